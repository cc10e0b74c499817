/* The Sessions page: selection for bulk terminate (kept across the list's refreshes), the pause
   of the refresh while a name is edited in place, refresh at once on session events (SSE through
   /func), the detail drawer, and the logs viewer's search (match count, next/previous). */
(function () {
  "use strict";

  const strings = JSON.parse(document.getElementById("wb-session-strings")?.textContent || "{}");
  const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, k) => String(values[k]));
  const selected = new Set();

  /* -- selection ---------------------------------------------------------------------------- */
  function boxes() { return [...document.querySelectorAll("#sessions-list [data-session-select]")]; }
  function syncSelection() {
    const present = new Set(boxes().filter((b) => !b.disabled).map((b) => b.value));
    for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
    boxes().forEach((b) => { b.checked = selected.has(b.value); b.closest("tr")?.classList.toggle("table-active", b.checked); });
    const all = document.getElementById("session-select-all");
    const enabled = boxes().filter((b) => !b.disabled);
    if (all) {
      all.checked = enabled.length > 0 && enabled.every((b) => selected.has(b.value));
      all.indeterminate = !all.checked && enabled.some((b) => selected.has(b.value));
      all.disabled = enabled.length === 0;
    }
    const button = document.getElementById("session-bulk-terminate");
    const count = document.getElementById("session-selected-count");
    if (button) button.disabled = selected.size === 0;
    if (count) { count.textContent = String(selected.size); count.classList.toggle("d-none", selected.size === 0); }
  }
  document.addEventListener("change", (e) => {
    const box = e.target.closest("[data-session-select]");
    if (box) {
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      syncSelection();
      return;
    }
    if (e.target.id === "session-select-all") {
      boxes().filter((b) => !b.disabled).forEach((b) => { if (e.target.checked) selected.add(b.value); else selected.delete(b.value); });
      syncSelection();
    }
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest("#session-bulk-terminate") || selected.size === 0) return;
    const query = [...selected].map((id) => "id=" + encodeURIComponent(id)).join("&");
    htmx.ajax("GET", "/sessions/terminate?" + query, { target: "#modal-host", swap: "innerHTML" });
  });
  document.body.addEventListener("wb:sessions-cleared", () => { selected.clear(); syncSelection(); });

  /* -- the list's refresh: paused while a name is edited in place ------------------------------ */
  // a tab, filter or page the user asked for wins over a refresh in flight (which would otherwise
  // put the old tab back); refreshes wait while such a request runs
  let asked = 0;
  let askedAt = 0;
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    const elt = e.detail.elt;
    const list = document.getElementById("sessions-list");
    if (!list) return;
    if (elt === list) {
      if (elt.querySelector(".wb-editing") || (asked > 0 && Date.now() - askedAt < 10000)) e.preventDefault();
      return;
    }
    if (e.detail.target === list) {
      htmx.trigger(list, "htmx:abort");
      asked += 1;
      askedAt = Date.now();
      elt.addEventListener("htmx:afterRequest", () => { asked = Math.max(0, asked - 1); }, { once: true });
    }
  });
  // keyboard users keep their place: the focused control is focused again after a refresh
  let refocus = null;
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const active = document.activeElement;
    const list = document.getElementById("sessions-list");
    refocus = null;
    if (!list || e.detail.target !== list || !active || !list.contains(active)) return;
    const row = active.closest("tr[data-session-id]");
    const attrs = ["hx-get", "data-tab", "value", "id", "name"];
    const attr = attrs.find((a) => active.hasAttribute(a));
    refocus = { row: row?.dataset.sessionId, attr, value: attr ? active.getAttribute(attr) : null, tag: active.tagName };
  });
  function restoreFocus() {
    if (!refocus) return;
    const list = document.getElementById("sessions-list");
    const scope = refocus.row ? list?.querySelector(`tr[data-session-id="${refocus.row}"]`) : list;
    const wanted = refocus;
    refocus = null;
    if (!scope || !wanted.attr) return;
    const match = [...scope.querySelectorAll(wanted.tag)].find((el) => el.getAttribute(wanted.attr) === wanted.value);
    if (match && document.activeElement === document.body) match.focus({ preventScroll: true });
  }
  document.body.addEventListener("htmx:afterSettle", () => {
    restoreFocus();
    const list = document.getElementById("sessions-list");
    if (list) {
      document.querySelectorAll("#session-search [data-session-state]").forEach((input) => {
        input.value = input.dataset.sessionState === "tab" ? (list.dataset.tab || "") : (list.dataset.status || "");
      });
      syncSelection();
    }
    const input = document.querySelector(".wb-editing input[name=name]");
    if (input && !input.dataset.focused) { input.dataset.focused = "1"; input.focus(); input.select(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const form = e.target.closest?.(".wb-editing");
    if (!form) return;
    e.preventDefault();
    form.querySelector("[data-rename-cancel]")?.click();
  });

  /* -- session events: refresh the list at once (the polling is the fallback) ------------------- */
  let pending = null;
  function refreshSoon() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; document.body.dispatchEvent(new CustomEvent("wb:sessions-refresh")); }, 300);
  }
  function connectEvents() {
    if (!window.EventSource || !document.getElementById("sessions-list")) return;
    const source = new EventSource("/func/events/session");
    ["session_enqueued", "session_scheduled", "session_started", "session_terminating", "session_terminated",
     "session_cancelled", "session_success", "session_failure", "kernel_started", "kernel_terminated"]
      .forEach((name) => source.addEventListener(name, refreshSoon));
    window.addEventListener("pagehide", () => source.close());
  }

  /* -- detail drawer ------------------------------------------------------------------------- */
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target?.id !== "session-drawer-host") return;
    const drawer = document.getElementById("session-drawer");
    if (!drawer) return;
    drawer.addEventListener("hidden.bs.offcanvas", () => { if (drawer.isConnected) drawer.remove(); }, { once: true });
    bootstrap.Offcanvas.getOrCreateInstance(drawer).show();
  });
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.target?.id !== "session-drawer-host") return;
    const open = document.getElementById("session-drawer");
    if (open) { bootstrap.Offcanvas.getInstance(open)?.dispose(); open.remove(); document.querySelectorAll(".offcanvas-backdrop").forEach((b) => b.remove()); }
  });
  // the drawer's own refresh stops once it is closed
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.elt?.id === "session-detail-body" && !e.detail.elt.closest(".offcanvas.show")) e.preventDefault();
  });

  /* -- status details popover (CS-13) ------------------------------------------------------------ */
  let popoverFor = null;  // the session id whose "?" opened it
  function closePopover(returnFocus) {
    const open = document.querySelector("body > .wb-status-popover");
    if (!open) return;
    open.remove();
    if (returnFocus && popoverFor) {
      // the list may have been re-rendered meanwhile: find the "?" again
      document.querySelector(`[data-status-help="${popoverFor}"]`)?.focus();
    }
  }
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.target?.id !== "session-popover-host") return;
    closePopover(false);
    popoverFor = e.detail.elt?.dataset.statusHelp || null;
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target?.id !== "session-popover-host") return;
    const card = e.detail.target.querySelector(".wb-status-popover");
    const trigger = popoverFor && document.querySelector(`[data-status-help="${popoverFor}"]`);
    if (!card) return;
    document.body.appendChild(card);
    const width = Math.min(420, document.documentElement.clientWidth - 16);
    card.style.width = width + "px";
    const r = trigger ? trigger.getBoundingClientRect() : { left: 16, right: 16, top: 80, bottom: 80 };
    const left = Math.max(8, Math.min(r.left + window.scrollX - 16, window.scrollX + document.documentElement.clientWidth - width - 8));
    card.style.left = left + "px";
    // below the "?" when it fits (or has more room), else above; never off the screen
    const below = window.innerHeight - r.bottom - 14;
    const above = r.top - 14;
    const natural = card.offsetHeight;
    const downward = below >= Math.min(natural, 320) || below >= above;
    const room = Math.max(160, downward ? below : above);
    card.style.maxHeight = room + "px";
    const height = Math.min(natural, room);
    card.style.top = (downward ? r.bottom + window.scrollY + 6 : Math.max(window.scrollY + 8, r.top + window.scrollY - height - 6)) + "px";
    card.focus();
    if (window.wbFormatTimes) window.wbFormatTimes(card);
  });
  document.addEventListener("click", (e) => {
    const open = document.querySelector("body > .wb-status-popover");
    if (!open) return;
    if (e.target.closest("[data-status-close]")) { closePopover(true); return; }
    if (!open.contains(e.target) && !e.target.closest("[data-status-help]")) closePopover(false);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && document.querySelector("body > .wb-status-popover")) {
      e.preventDefault();
      e.stopPropagation();
      closePopover(true);
    }
  }, true);

  /* -- export: the download starts, the dialog closes ------------------------------------------ */
  document.addEventListener("submit", (e) => {
    if (!e.target.matches("[data-wb-download]")) return;
    setTimeout(() => document.body.dispatchEvent(new CustomEvent("wb:close-modal")), 100);
  });

  /* -- logs search ------------------------------------------------------------------------------ */
  const log = { matches: [], index: -1 };
  function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function searchLogs(keepIndex) {
    const box = document.getElementById("session-log");
    const input = document.getElementById("log-search");
    const counter = document.getElementById("log-matches");
    if (!box || !input) return;
    const term = input.value;
    box.querySelectorAll("li").forEach((li) => {
      if (li.dataset.text === undefined) li.dataset.text = li.textContent;
      li.textContent = li.dataset.text;
    });
    log.matches = [];
    if (term) {
      const re = new RegExp(escapeRegExp(term), "gi");
      box.querySelectorAll("li").forEach((li) => {
        const text = li.dataset.text;
        if (!re.test(text)) return;
        re.lastIndex = 0;
        li.textContent = "";
        let last = 0;
        for (const m of text.matchAll(re)) {
          li.append(text.slice(last, m.index));
          const mark = document.createElement("mark");
          mark.textContent = m[0];
          li.append(mark);
          log.matches.push(mark);
          last = m.index + m[0].length;
        }
        li.append(text.slice(last));
      });
    }
    if (!keepIndex || log.index >= log.matches.length) log.index = log.matches.length ? 0 : -1;
    const n = log.matches.length;
    if (counter) counter.textContent = n === 0 ? strings.noMatch : n === 1 ? strings.oneMatch : format(strings.matches, { count: n });
    showMatch();
  }
  function showMatch() {
    log.matches.forEach((m, i) => m.classList.toggle("wb-current", i === log.index));
    const current = log.matches[log.index];
    if (current) current.scrollIntoView({ block: "center" });
    const counter = document.getElementById("log-matches");
    if (counter && current && log.matches.length > 1) counter.textContent = (log.index + 1) + " / " + format(strings.matches, { count: log.matches.length });
  }
  function step(delta) {
    if (!log.matches.length) return;
    log.index = (log.index + delta + log.matches.length) % log.matches.length;
    showMatch();
  }
  document.addEventListener("input", (e) => { if (e.target.id === "log-search") searchLogs(false); });
  document.addEventListener("keydown", (e) => {
    if (e.target.id === "log-search" && e.key === "Enter") { e.preventDefault(); step(e.shiftKey ? -1 : 1); }
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest("#log-next")) step(1);
    if (e.target.closest("#log-prev")) step(-1);
  });
  document.body.addEventListener("htmx:afterSettle", () => {
    const box = document.getElementById("session-log");
    if (box && !box.dataset.searched) { box.dataset.searched = "1"; searchLogs(true); }
  });

  document.addEventListener("DOMContentLoaded", () => { syncSelection(); connectEvents(); });
})();
