// Small DOM helpers: elements are built with h(), never from HTML strings,
// so names typed by users (key names, error messages) are always text.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "value") element.value = value;
    else if (name === "checked") element.checked = Boolean(value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let uid = 0;
export function uniqueId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form field: <div class="field"><label/><input/><p hint/></div>.
export function field(label, control, hint) {
  const id = control.id || uniqueId("field");
  control.id = id;
  let hintElement = null;
  if (hint) {
    hintElement = h("p", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintElement.id);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintElement);
}

export function loading(text) {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function errorBox(text, retry) {
  return h(
    "div",
    { class: "notice notice-error", role: "alert" },
    h("p", {}, text),
    retry ? h("button", { type: "button", class: "button", onclick: retry }, "Try again") : null,
  );
}

export function emptyState(title, text, action) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), h("p", {}, text), action || null);
}

export function badge(status) {
  const tone =
    {
      active: "ok",
      running: "ok",
      succeeded: "ok",
      ok: "ok",
      revoked: "bad",
      failed: "bad",
      down: "bad",
      expired: "warn",
      stopped: "neutral",
      provisioning: "info",
      queued: "info",
      cancelled: "neutral",
    }[status] || "neutral";
  return h(
    "span",
    { class: `badge badge-${tone}` },
    status === "provisioning" ? h("span", { class: "spinner spinner-small", "aria-hidden": "true" }) : null,
    status,
  );
}

// A responsive table: on a phone each row becomes a card, labelled by its column.
export function table(caption, columns, rows, attributes = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data-table", ...attributes },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            row.attributes || {},
            columns.map((c, index) =>
              h("td", { class: c.class, "data-label": c.label }, row.cells[index]),
            ),
          ),
        ),
      ),
    ),
  );
}
