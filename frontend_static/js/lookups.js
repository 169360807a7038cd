// Lists several pages need (keys for names and filters, deployments for models).
import { api } from "./api.js";
import { h } from "./dom.js";

export async function loadKeys(signal) {
  return (await api("/api/keys", { signal })).data;
}

export async function loadDeployments(signal) {
  return (await api("/api/deployments", { signal })).data;
}

// A key as people recognise it: its name, and its prefix in code type.
export function keyLabel(key, fallbackId) {
  if (!key) return h("code", { title: "This key is not in the list any more." }, fallbackId);
  return h("span", { class: "key-label" }, key.name, " ", h("code", { class: "muted" }, `${key.prefix}…`));
}
