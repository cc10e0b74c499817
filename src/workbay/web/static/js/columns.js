/* Column chooser (UI-7): every table with [data-columns] lets the user hide columns; the choice
   is kept per table in localStorage and re-applied whenever htmx re-renders the table. */
(function () {
  "use strict";
  const key = (tableId) => "workbay:columns:" + tableId;

  function hidden(tableId) {
    try { return new Set(JSON.parse(localStorage.getItem(key(tableId)) || "[]")); } catch (_) { return new Set(); }
  }

  function apply(tableId) {
    const off = hidden(tableId);
    const table = document.getElementById(tableId);
    if (table) {
      table.querySelectorAll("[data-col]").forEach((cell) => cell.classList.toggle("wb-col-hidden", off.has(cell.dataset.col)));
    }
    document.querySelectorAll('[data-column-toggle="' + tableId + '"]').forEach((box) => { box.checked = !off.has(box.value); });
  }

  function applyAll(root) {
    const ids = new Set();
    (root || document).querySelectorAll("table[data-columns][id]").forEach((t) => ids.add(t.id));
    document.querySelectorAll("[data-column-toggle]").forEach((b) => ids.add(b.dataset.columnToggle));
    ids.forEach(apply);
  }
  window.wbApplyColumns = applyAll;

  document.addEventListener("change", (e) => {
    const box = e.target.closest("[data-column-toggle]");
    if (!box) return;
    const tableId = box.dataset.columnToggle;
    const off = hidden(tableId);
    if (box.checked) off.delete(box.value); else off.add(box.value);
    localStorage.setItem(key(tableId), JSON.stringify([...off]));
    apply(tableId);
  });
  document.addEventListener("DOMContentLoaded", () => applyAll(document));
  document.addEventListener("htmx:afterSettle", () => applyAll(document));
  document.addEventListener("wb:rows-rendered", () => applyAll(document));
})();
