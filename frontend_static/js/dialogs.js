// Modal dialogs on the native <dialog> element: it traps focus, closes on
// Escape and is announced as a dialog; focus returns where it was.
import { isAbort } from "./api.js";
import { h, uniqueId } from "./dom.js";

function openDialog(dialog) {
  const returnTo = document.activeElement;
  document.body.append(dialog);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (returnTo && returnTo.isConnected) returnTo.focus();
  });
  dialog.showModal();
}

/** Ask before something that cannot be undone. Resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    const titleId = uniqueId("dialog-title");
    const cancel = h("button", { type: "button", class: "button", onclick: () => dialog.close("cancel") }, "Cancel");
    const confirm = h(
      "button",
      { type: "button", class: danger ? "button button-danger" : "button button-primary", onclick: () => dialog.close("confirm") },
      confirmLabel,
    );
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId, role: "alertdialog" },
      h("h2", { id: titleId }, title),
      h("p", {}, message),
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"));
    openDialog(dialog);
    cancel.focus(); // the safe choice has the focus
  });
}

/**
 * A form in a dialog. onSubmit(form) may throw an ApiError: its message is
 * shown in the dialog and the field named by its `param` is marked invalid.
 * Resolves with onSubmit's result, or null when cancelled.
 */
export function formDialog({ title, intro, content, submitLabel, onSubmit, wide = false }) {
  return new Promise((resolve) => {
    const titleId = uniqueId("dialog-title");
    const problem = h("div", { class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "button button-primary" }, submitLabel);
    const form = h(
      "form",
      { novalidate: false },
      h("h2", { id: titleId }, title),
      intro ? h("p", { class: "dialog-intro" }, intro) : null,
      content,
      problem,
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { type: "button", class: "button", onclick: () => dialog.close() }, "Cancel"),
        submit,
      ),
    );
    const dialog = h("dialog", { class: wide ? "dialog dialog-wide" : "dialog", "aria-labelledby": titleId }, form);
    let result = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.replaceChildren();
      for (const invalid of form.querySelectorAll("[aria-invalid]")) invalid.removeAttribute("aria-invalid");
      submit.disabled = true;
      submit.setAttribute("aria-busy", "true");
      try {
        result = await onSubmit(form);
        dialog.close("done");
      } catch (exc) {
        if (isAbort(exc)) return;
        problem.append(h("p", {}, exc.message || String(exc)));
        const param = exc.param ? String(exc.param).split(".").pop() : null;
        const target = param ? form.querySelector(`[name="${CSS.escape(param)}"]`) : null;
        if (target) {
          target.setAttribute("aria-invalid", "true");
          target.focus();
        }
      } finally {
        submit.disabled = false;
        submit.removeAttribute("aria-busy");
      }
    });
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "done" ? result : null));
    openDialog(dialog);
    const first = form.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  });
}

export { openDialog };
