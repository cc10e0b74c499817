/* Live lists ([data-wb-live]) refresh by polling; a refresh waits while the user works inside the
   list (focus in it, or a dropdown open), so keyboard users keep their place. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeRequest", (e) => {
    const el = e.detail.elt;
    if (!el || !el.matches || !el.matches("[data-wb-live]")) return;
    const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    if (trigger && trigger.type && trigger.type.startsWith("wb:")) return; // something changed: refresh now
    const active = document.activeElement;
    if ((active && active !== document.body && el.contains(active)) || el.querySelector(".dropdown-menu.show") || document.querySelector(".modal.show")) {
      e.preventDefault();
    }
  });
})();
