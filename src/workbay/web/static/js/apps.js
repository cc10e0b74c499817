/* Apps in sessions (AP-1, AP-5…AP-7): the app launcher dialog's tiles and options, the folder
   explorer's "Execute File Browser" / "Run SFTP server", and the launcher dialog opened by itself
   when a session the user just launched starts running.

   An HTTP app opens in a new window: the window is opened by the click itself (popup blockers
   allow only that) with a "starting" note, and sent to the app's opening link when the server
   answers; on an error it closes and the dialog says why.  SSH / SFTP shows the connection
   dialog. */
(function () {
  "use strict";

  const PENDING_KEY = "workbay:open-apps";  // sessions launched here whose launcher opens at RUNNING
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const fill = (text, values) => String(text || "").replace(/%\((\w+)\)s/g, (_, k) => (values[k] === undefined ? "" : String(values[k])));
  const shellStrings = () => JSON.parse(document.getElementById("wb-strings")?.textContent || "{}");

  async function post(url, values) {
    const body = new URLSearchParams(values || {});
    let resp;
    try {
      resp = await fetch(url, { method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), Accept: "application/json" } });
    } catch (_) {
      return { ok: false, error: { title: "", message: shellStrings().networkError || "Network error" } };
    }
    let data = {};
    try { data = await resp.json(); } catch (_) { data = { title: "HTTP " + resp.status, message: shellStrings().serverError || "" }; }
    return resp.ok ? { ok: true, data } : { ok: false, error: data };
  }

  /* A window opened by the click, showing that the app is starting. */
  function openWaitingWindow(title, text) {
    let win = null;
    try { win = window.open("", "_blank"); } catch (_) { win = null; }
    if (!win) return null;
    try {
      win.opener = null;
      const doc = win.document;
      doc.title = title;
      const dark = document.documentElement.getAttribute("data-bs-theme") === "dark";
      doc.body.style.cssText = "margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;" +
        "font:16px system-ui,sans-serif;" + (dark ? "background:#212529;color:#dee2e6" : "background:#f8f9fa;color:#212529");
      const box = doc.createElement("div");
      box.setAttribute("role", "status");
      box.style.cssText = "text-align:center;max-width:30rem;padding:2rem";
      const h = doc.createElement("h1");
      h.style.cssText = "font-size:1.25rem;margin:0 0 .5rem";
      h.textContent = title;
      const p = doc.createElement("p");
      p.style.cssText = "margin:0;opacity:.75";
      p.textContent = text;
      box.append(h, p);
      doc.body.appendChild(box);
    } catch (_) { /* the window is still usable for the redirect */ }
    return win;
  }

  function showStatus(host, level, text, link) {
    if (!host) return;
    host.innerHTML = "";
    if (!text) return;
    const box = document.createElement("div");
    box.className = "alert py-2 px-3 small mb-0 d-flex gap-2 align-items-center alert-" + level;
    if (level === "danger") box.setAttribute("role", "alert");
    if (level === "info") {
      const spin = document.createElement("span");
      spin.className = "spinner-border spinner-border-sm flex-shrink-0";
      spin.setAttribute("aria-hidden", "true");
      box.appendChild(spin);
    } else {
      const icon = document.createElement("i");
      icon.className = "bi flex-shrink-0 " + (level === "danger" ? "bi-exclamation-octagon" : level === "warning" ? "bi-exclamation-triangle" : "bi-check-circle");
      icon.setAttribute("aria-hidden", "true");
      box.appendChild(icon);
    }
    const span = document.createElement("div");
    span.textContent = text;
    if (link) {
      span.append(" ");
      const a = document.createElement("a");
      a.href = link.href; a.target = "_blank"; a.rel = "noopener"; a.textContent = link.text;
      a.className = "alert-link";
      span.appendChild(a);
    }
    box.appendChild(span);
    host.appendChild(box);
  }

  function errorText(error, fallback) {
    const parts = [error?.title, error?.message].filter(Boolean);
    return parts.length ? parts.join(": ") : fallback;
  }

  function showDialog(url) {
    htmx.ajax("GET", url, { target: "#modal-host", swap: "innerHTML" });
  }

  /* -- the launcher dialog ------------------------------------------------------------------- */
  const busy = new Set();
  function launcherStrings(root) {
    try { return JSON.parse(root.dataset.strings || "{}"); } catch (_) { return {}; }
  }

  async function startApp(tile) {
    const root = tile.closest("#app-launcher");
    if (!root || busy.has(tile)) return;
    const s = launcherStrings(root);
    const app = tile.dataset.wbApp;
    const label = tile.dataset.label || app;
    const opensWindow = tile.dataset.protocol !== "tcp";
    const status = root.querySelector("#app-status");
    const values = {};
    const options = root.querySelector("#app-options");
    const portError = root.querySelector("#app-port-error");
    if (options) {
      if (options.querySelector("#app-public")?.checked) values.open_to_public = "on";
      if (options.querySelector("#app-try-port")?.checked) {
        const input = options.querySelector("#app-port");
        const port = Number(input?.value);
        if (!input?.value || !Number.isInteger(port) || port < Number(input.min) || port > Number(input.max)) {
          input?.classList.add("is-invalid");
          if (portError) { portError.textContent = s.portInvalid || ""; portError.hidden = false; }
          input?.focus();
          return;
        }
        values.try_preferred_port = "on";
        values.preferred_port = String(port);
      }
    }
    // the window first, while the click still counts as the user's
    const win = opensWindow ? openWaitingWindow(fill(s.waitTitle, { app: label }), s.waitText || "") : null;
    busy.add(tile);
    tile.classList.add("wb-busy");
    tile.setAttribute("aria-busy", "true");
    showStatus(status, "info", fill(s.starting, { app: label }));
    const sid = root.dataset.sessionId;
    const got = await post("/sessions/" + encodeURIComponent(sid) + "/apps/" + encodeURIComponent(app), values);
    busy.delete(tile);
    tile.classList.remove("wb-busy");
    tile.removeAttribute("aria-busy");
    if (!got.ok) {
      if (win) win.close();
      showStatus(status, "danger", errorText(got.error, fill(s.failed, { app: label })));
      return;
    }
    const d = got.data;
    if (d.protocol === "tcp") {
      showStatus(status, "", "");
      if (d.dialog) showDialog(d.dialog);
      return;
    }
    const url = d.url || d.public_url;
    const notes = [];
    if (values.try_preferred_port && d.preferred_port_used === false) notes.push(fill(s.portTaken, { app: label, port: d.port }));
    if (win && !win.closed) {
      win.location.replace(url);
      notes.unshift(d.public_url ? fill(s.openedPublic, { app: label, url: d.public_url }) : fill(s.opened, { app: label }));
      showStatus(status, notes.length > 1 ? "warning" : "success", notes.join(" "));
    } else {
      showStatus(status, "warning", fill(s.blocked, { app: label }), { href: url, text: fill(s.openLink, { app: label }) });
    }
  }

  document.addEventListener("click", (e) => {
    const tile = e.target.closest("#app-launcher [data-wb-app]");
    if (tile && !tile.disabled) { e.preventDefault(); startApp(tile); }
  });
  document.addEventListener("change", (e) => {
    if (e.target.id === "app-try-port") {
      const input = document.getElementById("app-port");
      if (!input) return;
      input.disabled = !e.target.checked;
      if (e.target.checked) input.focus();
      else { input.classList.remove("is-invalid"); const err = document.getElementById("app-port-error"); if (err) err.hidden = true; }
    }
  });
  document.addEventListener("input", (e) => {
    if (e.target.id !== "app-port") return;
    e.target.classList.remove("is-invalid");
    const err = document.getElementById("app-port-error");
    if (err) err.hidden = true;
  });
  document.addEventListener("submit", (e) => { if (e.target.id === "app-options") e.preventDefault(); });

  /* -- the folder explorer: File Browser and SFTP server ---------------------------------------- */
  async function folderApp(button) {
    if (button.getAttribute("aria-busy") === "true") return;
    const explorer = button.closest("[data-wb-explorer]");
    const status = explorer?.querySelector("[data-wb-folder-app-status]");
    const kind = button.dataset.wbFolderApp;
    const s = { starting: button.dataset.starting, failed: button.dataset.failed, opened: button.dataset.opened,
                blocked: button.dataset.blocked, waitTitle: button.dataset.waitTitle, waitText: button.dataset.waitText };
    const win = kind === "file-browser" ? openWaitingWindow(s.waitTitle || "", s.waitText || "") : null;
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    button.querySelector(".spinner-border")?.classList.remove("d-none");
    showStatus(status, "info", s.starting);
    const got = await post(button.dataset.url, {});
    button.removeAttribute("aria-busy");
    button.disabled = false;
    button.querySelector(".spinner-border")?.classList.add("d-none");
    document.body.dispatchEvent(new CustomEvent("wb:sessions-refresh"));
    if (!got.ok) {
      if (win) win.close();
      showStatus(status, "danger", errorText(got.error, s.failed));
      return;
    }
    const d = got.data;
    if (kind === "sftp-server") {
      showStatus(status, "", "");
      if (d.dialog) showDialog(d.dialog);
      return;
    }
    if (win && !win.closed) {
      win.location.replace(d.url);
      showStatus(status, "success", s.opened);
    } else {
      showStatus(status, "warning", s.blocked, { href: d.url, text: button.textContent.trim() });
    }
  }
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-wb-folder-app]");
    if (button && !button.disabled) { e.preventDefault(); folderApp(button); }
  });

  /* -- open the launcher when a session launched from here starts running ----------------------- */
  function pending() {
    try { return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "[]").filter((p) => p && p.id && Date.now() - p.at < 30 * 60 * 1000); } catch (_) { return []; }
  }
  function savePending(list) {
    if (list.length) sessionStorage.setItem(PENDING_KEY, JSON.stringify(list)); else sessionStorage.removeItem(PENDING_KEY);
  }
  window.wbOpenAppsWhenRunning = function (ids) {
    const list = pending().filter((p) => !ids.includes(p.id));
    ids.forEach((id) => list.push({ id, at: Date.now() }));
    savePending(list);
  };
  let watching = null;
  async function checkPending() {
    const list = pending();
    if (!list.length || !document.getElementById("sessions-list")) { clearInterval(watching); watching = null; savePending(list); return; }
    if (document.querySelector("#modal-host .modal")) return;  // the user is busy with a dialog
    for (const p of list) {
      let info = null;
      try {
        const resp = await fetch("/func/session/" + encodeURIComponent(p.id), { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (resp.status === 404) { savePending(pending().filter((x) => x.id !== p.id)); continue; }
        if (resp.ok) info = await resp.json();
      } catch (_) { return; }
      if (!info) continue;
      if (info.status === "RUNNING") {
        savePending(pending().filter((x) => x.id !== p.id));
        if (!document.querySelector("#modal-host .modal")) showDialog("/sessions/" + encodeURIComponent(p.id) + "/apps");
        return;
      }
      if (["TERMINATED", "ERROR", "CANCELLED", "TERMINATING"].includes(info.status)) savePending(pending().filter((x) => x.id !== p.id));
    }
  }
  function watchPending() {
    if (watching || !pending().length || !document.getElementById("sessions-list")) return;
    checkPending();
    watching = setInterval(checkPending, 2000);
  }
  document.addEventListener("DOMContentLoaded", watchPending);
})();
