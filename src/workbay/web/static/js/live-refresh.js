/* Live lists ([data-wb-live]) refresh by polling.  A refresh waits while a menu or a dialog is
   open; keyboard users keep their place: the focused control (found again by its id) gets the
   focus back after the swap. */
(function () {
  "use strict";
  let refocus = null;
  document.addEventListener("htmx:beforeRequest", (e) => {
    const el = e.detail.elt;
    if (!el || !el.matches || !el.matches("[data-wb-live]")) return;
    if (el.querySelector(".dropdown-menu.show") || document.querySelector(".modal.show")) {
      const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
      if (!(trigger && trigger.type && trigger.type.startsWith("wb:"))) { e.preventDefault(); return; }
    }
    const active = document.activeElement;
    refocus = active && active.id && el.contains(active) ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (!refocus) return;
    const wanted = document.getElementById(refocus);
    refocus = null;
    if (wanted && (document.activeElement === document.body || !document.activeElement)) wanted.focus({ preventScroll: true });
  });
  /* a switcher inside a fragment ([data-wb-url-param]) keeps its choice in the page's URL */
  document.addEventListener("change", (e) => {
    const el = e.target.closest && e.target.closest("[data-wb-url-param]");
    if (!el) return;
    const url = new URL(window.location.href);
    if (el.value) url.searchParams.set(el.dataset.wbUrlParam, el.value); else url.searchParams.delete(el.dataset.wbUrlParam);
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  });
})();
