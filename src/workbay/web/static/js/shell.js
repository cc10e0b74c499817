/* The WebUI shell: CSRF header on htmx requests, dialogs, toasts, sidebar, theme, notification
   bell (SSE through /func), copy and reveal buttons, locale-formatted timestamps. */
(function () {
  "use strict";

  const strings = JSON.parse(document.getElementById("wb-strings")?.textContent || "{}");
  const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const lang = document.documentElement.lang || "en";
  const FOCUSABLE = "[autofocus], .modal-body input:not([readonly]):not([type=hidden]):not([disabled]), " +
    ".modal-body select, .modal-body textarea, .modal-footer .btn-primary";

  /* -- htmx forms submitted before htmx bound them ------------------------------------------- */
  // htmx binds swapped-in content at settle time, a few ms after an [autofocus] field already has
  // the focus; an Enter in that window would submit the form natively (a GET with the CSRF token
  // in the URL). Binding it here, in the capture phase, lets htmx's own handler take this submit.
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (window.htmx && form instanceof HTMLFormElement && (form.hasAttribute("hx-post") || form.hasAttribute("hx-get"))) {
      htmx.process(form);
    }
  }, true);

  /* -- toasts (aria-live region) ---------------------------------------------------------- */
  function toast(message, level) {
    const host = document.getElementById("toasts");
    if (!host || !message) return;
    const el = document.createElement("div");
    const tone = { success: "text-bg-success", danger: "text-bg-danger", warning: "text-bg-warning", info: "text-bg-primary" }[level || "success"] || "text-bg-secondary";
    el.className = "toast align-items-center border-0 " + tone;
    el.setAttribute("role", level === "danger" ? "alert" : "status");
    el.innerHTML = '<div class="d-flex"><div class="toast-body"></div><button type="button" class="btn-close me-2 m-auto" data-bs-dismiss="toast"></button></div>';
    el.querySelector(".toast-body").textContent = message;
    el.querySelector(".btn-close").setAttribute("aria-label", strings.close || "Close");
    if (level !== "warning" && level !== undefined) el.querySelector(".btn-close").classList.add("btn-close-white");
    host.appendChild(el);
    const t = bootstrap.Toast.getOrCreateInstance(el, { delay: level === "danger" ? 8000 : 4000 });
    el.addEventListener("hidden.bs.toast", () => el.remove());
    t.show();
  }
  window.wbToast = toast;

  /* -- htmx wiring ------------------------------------------------------------------------ */
  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = csrfToken();
  });
  document.body.addEventListener("wb:toast", (e) => toast(e.detail.message, e.detail.level));
  document.body.addEventListener("wb:close-modal", () => {
    const m = document.querySelector("#modal-host .modal");
    if (m) bootstrap.Modal.getOrCreateInstance(m).hide();
  });
  document.body.addEventListener("htmx:responseError", (e) => {
    if (e.detail.xhr.getResponseHeader("HX-Trigger")) return; // the server already said why
    toast(strings.serverError, "danger");
  });
  document.body.addEventListener("htmx:sendError", () => toast(strings.networkError, "danger"));

  /* dialogs: anything swapped into #modal-host is shown as a Bootstrap modal */
  htmx.onLoad((content) => formatTimes(content));  // every piece of content htmx inserts
  document.body.addEventListener("htmx:afterSwap", (e) => {
    const host = document.getElementById("modal-host");
    if (e.detail.target === host) {
      const modal = host.querySelector(".modal");
      if (!modal) return;
      modal.addEventListener("hidden.bs.modal", () => { if (modal.parentNode === host) host.innerHTML = ""; }, { once: true });
      modal.addEventListener("shown.bs.modal", () => {
        modal.dataset.wbReady = "true";
        // focus the first field unless the user already went to one
        const active = document.activeElement;
        if (active && active !== modal && modal.contains(active)) return;
        const first = modal.querySelector(FOCUSABLE);
        if (first) first.focus();
      }, { once: true });
      document.querySelectorAll("#modal-host ~ .modal-backdrop, body > .modal-backdrop").forEach((b) => { if (!document.querySelector(".modal.show")) b.remove(); });
      bootstrap.Modal.getOrCreateInstance(modal).show();
    }
  });
  // content swapped inside an open dialog: keep the focus in the dialog (Escape, Tab keep working)
  document.body.addEventListener("htmx:afterSettle", () => {
    const modal = document.querySelector("#modal-host .modal.show");
    if (!modal || modal.contains(document.activeElement)) return;
    const invalid = modal.querySelector(".is-invalid");
    (invalid || modal.querySelector(FOCUSABLE) || modal).focus();
  });
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    // opening a dialog while one is open: replace it
    const host = document.getElementById("modal-host");
    if (e.detail.target === host) {
      const open = host.querySelector(".modal");
      if (open) { bootstrap.Modal.getInstance(open)?.dispose(); host.innerHTML = ""; document.querySelectorAll(".modal-backdrop").forEach((b) => b.remove()); document.body.classList.remove("modal-open"); document.body.style.removeProperty("overflow"); document.body.style.removeProperty("padding-right"); }
    }
  });

  /* -- sidebar ---------------------------------------------------------------------------- */
  const phone = window.matchMedia("(max-width: 767.98px)");
  function toggleSidebar() {
    const shell = document.getElementById("wb-shell");
    if (!shell) return;
    // phones open the sidebar over the page; wider screens switch between full and compact
    const expanded = phone.matches ? shell.classList.toggle("wb-mobile-open") : !shell.classList.toggle("wb-compact");
    document.querySelectorAll("[data-wb-sidebar-toggle]").forEach((b) => b.setAttribute("aria-expanded", String(expanded)));
  }
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-wb-sidebar-toggle]")) { toggleSidebar(); return; }
    const shell = document.getElementById("wb-shell");
    if (phone.matches && shell?.classList.contains("wb-mobile-open") && !e.target.closest("#wb-sidebar")) shell.classList.remove("wb-mobile-open");
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "[" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest("input, textarea, select, [contenteditable=true]") || document.querySelector(".modal.show")) return;
    e.preventDefault();
    toggleSidebar();
  });

  /* -- theme ------------------------------------------------------------------------------ */
  function setTheme(theme, persist) {
    document.documentElement.setAttribute("data-bs-theme", theme);
    document.getElementById("wb-theme-toggle")?.setAttribute("aria-pressed", String(theme === "dark"));
    document.querySelectorAll("[data-wb-theme-select]").forEach((s) => { s.value = theme; });
    if (persist) htmx.ajax("POST", "/preferences", { values: { theme: theme }, swap: "none" });
  }
  document.addEventListener("click", (e) => {
    if (!e.target.closest("#wb-theme-toggle")) return;
    const next = document.documentElement.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
    setTheme(next, true);
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches("[data-wb-theme-select]")) setTheme(e.target.value, false);
  });

  /* -- copy / reveal / unlimited / type-to-confirm ------------------------------------------ */
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      const ok = document.execCommand("copy");
      area.remove();
      return ok;
    }
  }
  document.addEventListener("click", async (e) => {
    const copy = e.target.closest("[data-wb-copy]");
    if (copy) {
      const src = document.getElementById(copy.dataset.wbCopy);
      const ok = src && (await copyText(src.value !== undefined ? src.value : src.textContent));
      toast(ok ? strings.copied : strings.copyFailed, ok ? "success" : "warning");
    }
    const reveal = e.target.closest("[data-wb-reveal]");
    if (reveal) {
      const input = document.getElementById(reveal.dataset.wbReveal);
      if (input) {
        input.type = input.type === "password" ? "text" : "password";
        reveal.querySelector(".bi")?.classList.toggle("bi-eye-slash", input.type === "text");
      }
    }
  });
  document.addEventListener("change", (e) => {
    const box = e.target.closest("[data-wb-unlimited]");
    if (!box) return;
    const input = document.getElementById(box.dataset.wbUnlimited);
    if (input) { input.disabled = box.checked; if (!box.checked) input.focus(); }
  });
  document.addEventListener("input", (e) => {
    const field = e.target.closest("[data-wb-confirm]");
    if (!field) return;
    const submit = field.form?.querySelector("button[type=submit]");
    if (submit) submit.disabled = field.value !== field.dataset.wbConfirm;
  });

  /* -- timestamps in the user's locale and time zone --------------------------------------- */
  const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  function formatTimes(root) {
    (root || document).querySelectorAll("time[data-format=datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = timeFormat.format(d);
    });
  }
  window.wbFormatTimes = formatTimes;

  /* -- notification bell: the manager's SSE stream through /func --------------------------- */
  const BELL_KEY = "workbay:notifications";
  const bell = { items: [], unread: 0 };
  function loadBell() {
    try { Object.assign(bell, JSON.parse(localStorage.getItem(BELL_KEY) || "{}")); } catch (_) { /* ignore */ }
    bell.items = Array.isArray(bell.items) ? bell.items : [];
  }
  function saveBell() { localStorage.setItem(BELL_KEY, JSON.stringify({ items: bell.items.slice(0, 50), unread: bell.unread })); }
  function renderBell() {
    const list = document.getElementById("wb-bell-list");
    const badge = document.getElementById("wb-bell-count");
    if (!list || !badge) return;
    badge.textContent = bell.unread > 99 ? "99+" : String(bell.unread);
    badge.classList.toggle("d-none", bell.unread === 0);
    list.innerHTML = "";
    if (!bell.items.length) {
      const li = document.createElement("li");
      li.className = "text-body-secondary text-center py-4";
      li.textContent = strings.noNotifications;
      list.appendChild(li);
      return;
    }
    for (const item of bell.items) {
      const li = document.createElement("li");
      const title = document.createElement(item.href ? "a" : "div");
      title.className = "fw-semibold d-block";
      if (item.href) title.href = item.href;
      if (item.key) li.dataset.sessionId = item.key;
      if (item.status) li.dataset.status = item.status;
      if (item.tracking) {
        const spin = document.createElement("span");
        spin.className = "spinner-border spinner-border-sm text-primary me-2";
        spin.setAttribute("aria-hidden", "true");
        title.appendChild(spin);
      } else if (item.status) {
        const icon = document.createElement("i");
        icon.className = "me-2 bi " + ({ RUNNING: "bi-play-circle-fill text-success", ERROR: "bi-x-circle-fill text-danger",
          CANCELLED: "bi-x-circle text-secondary", TERMINATED: "bi-stop-circle text-secondary" }[item.status] || "bi-hourglass-split text-warning");
        icon.setAttribute("aria-hidden", "true");
        title.appendChild(icon);
      }
      title.append(item.title);
      const meta = document.createElement("div");
      meta.className = "small text-body-secondary";
      meta.textContent = (item.message ? item.message + " · " : "") + timeFormat.format(new Date(item.at));
      li.append(title, meta);
      if (item.task) {
        // background task (AD-8): a progress bar while it runs
        li.dataset.taskId = item.task;
        const bar = document.createElement("div");
        bar.className = "progress mt-1";
        bar.style.height = ".35rem";
        bar.setAttribute("role", "progressbar");
        bar.setAttribute("aria-label", item.title);
        bar.setAttribute("aria-valuenow", String(Math.round(item.progress || 0)));
        const fill = document.createElement("div");
        fill.className = "progress-bar" + (item.status === "failed" ? " bg-danger" : item.status === "done" ? " bg-success" : "");
        fill.style.width = Math.max(0, Math.min(100, item.progress || 0)) + "%";
        bar.appendChild(fill);
        li.appendChild(bar);
      }
      list.appendChild(li);
    }
  }
  /* session creation (UI-2): one item per session, updated by its events until it runs */
  const SESSION_STATUS = {
    session_enqueued: "PENDING", session_scheduled: "PREPARING", session_started: "RUNNING",
    session_success: "TERMINATED", session_terminated: "TERMINATED", session_failure: "ERROR",
    session_cancelled: "CANCELLED",
  };
  const SESSION_DONE = ["RUNNING", "TERMINATED", "ERROR", "CANCELLED"];
  const sessionText = (status) => (strings.sessionStatus || {})[status] || status;
  function sessionUpdate(key, status, reason) {
    const item = bell.items.find((i) => i.key === key);
    if (!item || !status) return false;
    if (item.status === status) return true;
    item.status = status;
    item.message = sessionText(status) + (reason && status !== "RUNNING" && status !== "PENDING" ? " (" + reason + ")" : "");
    item.at = Date.now();
    if (SESSION_DONE.includes(status)) item.tracking = false;
    bell.items = [item, ...bell.items.filter((i) => i !== item)];
    bell.unread += 1;
    saveBell();
    renderBell();
    return true;
  }
  window.wbBellTrack = function (sessions, message) {
    for (const s of sessions) {
      let item = bell.items.find((i) => i.key === s.id);
      if (!item) {
        item = { key: s.id, status: "PENDING", message: sessionText("PENDING"), at: Date.now() };
        bell.items.unshift(item);
        bell.unread += 1;
      }
      item.title = (strings.sessionTitle || "%(name)s").replace("%(name)s", s.name);
      item.href = "/sessions";
      item.tracking = !SESSION_DONE.includes(item.status);
    }
    bell.items = bell.items.slice(0, 50);
    saveBell();
    renderBell();
    void message;
  };
  /* background tasks (AD-8): one item per task, its progress updated by bgtask_* events */
  const TASK_DONE = { bgtask_done: "done", bgtask_failed: "failed", bgtask_cancelled: "cancelled" };
  const taskText = (status) => (strings.taskStatus || {})[status] || status;
  function taskUpdate(info, name) {
    const id = info.task_id;
    let item = bell.items.find((i) => i.task === id);
    if (!item) {
      item = { task: id, title: strings.taskTitle || "Background task", at: Date.now(), progress: 0, status: "running", tracking: true };
      bell.items.unshift(item);
      bell.unread += 1;
    }
    const kindTitle = info.kind && (strings.taskKinds || {})[info.kind];
    if (kindTitle && item.title === (strings.taskTitle || "Background task")) item.title = kindTitle;
    const status = TASK_DONE[name] || info.status || (name === "bgtask_updated" ? "running" : item.status);
    const total = Number(info.total_progress || 0), current = Number(info.current_progress || 0);
    if (total) item.progress = current / total * 100;
    if (status === "done") item.progress = 100;
    if (item.status !== status && status !== "running") bell.unread += 1;
    item.status = status;
    item.tracking = status === "running";
    item.message = taskText(status) + (info.message ? " · " + info.message : "");
    item.at = Date.now();
    bell.items = [item, ...bell.items.filter((i) => i !== item)].slice(0, 50);
    saveBell();
    renderBell();
  }
  function trackTask(detail) {
    if (!detail || !detail.task_id) return;
    let item = bell.items.find((i) => i.task === detail.task_id);
    if (!item) {
      item = { task: detail.task_id, at: Date.now(), progress: 0, status: "running", tracking: true, message: taskText("running") };
      bell.items.unshift(item);
      bell.unread += 1;
    }
    item.title = detail.title || item.title || strings.taskTitle;
    if (detail.href) item.href = detail.href;
    saveBell();
    renderBell();
    startPolling();
  }
  document.body.addEventListener("wb:bgtask", (e) => trackTask(e.detail));
  async function pollTasks() {
    for (const item of bell.items.filter((i) => i.tracking && i.task)) {
      try {
        const resp = await fetch("/func/background-tasks/" + encodeURIComponent(item.task), { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (resp.status === 404) { item.tracking = false; saveBell(); renderBell(); continue; }
        if (resp.ok) {
          const info = await resp.json();
          if (info.status !== "running" || info.current_progress !== undefined) taskUpdate(info, "bgtask_" + (info.status === "running" ? "updated" : info.status));
        }
      } catch (_) { /* offline: try again later */ }
    }
  }
  let pollTimer = null;
  function startPolling() {
    if (pollTimer) return;
    pollTracked();
    pollTimer = setInterval(() => {
      if (bell.items.some((i) => i.tracking)) pollTracked();
      else { clearInterval(pollTimer); pollTimer = null; }
    }, 3000);
  }
  async function pollTracked() {
    pollTasks();
    // events sent while no page listened (between two pages): ask for the status
    for (const item of bell.items.filter((i) => i.tracking && i.key)) {
      try {
        const resp = await fetch("/func/session/" + encodeURIComponent(item.key), { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (resp.status === 404) { item.tracking = false; saveBell(); renderBell(); continue; }
        if (resp.ok) {
          const info = await resp.json();
          const status = info.status === "SCHEDULED" || info.status === "PREPARING" || info.status === "PULLING" ? "PREPARING" : info.status;
          sessionUpdate(item.key, status, info.statusInfo || "");
        }
      } catch (_) { /* offline: try again later */ }
    }
  }
  function onEvent(name, raw) {
    let data = {};
    try { data = JSON.parse(raw); } catch (_) { data = { message: raw }; }
    if (data.sessionId && sessionUpdate(data.sessionId, SESSION_STATUS[name], data.reason)) return;
    if (data.task_id && name.startsWith("bgtask_")) { taskUpdate(data, name); return; }
    const item = { title: data.title || name.replace(/_/g, " "), message: data.message || data.reason || "", at: Date.now() };
    if (data.sessionId && SESSION_STATUS[name]) {
      // later events of the same session update this item instead of adding more
      Object.assign(item, { key: data.sessionId, status: SESSION_STATUS[name], href: "/sessions",
        title: (strings.sessionTitle || "%(name)s").replace("%(name)s", data.sessionName || ""),
        message: sessionText(SESSION_STATUS[name]) + (data.reason && SESSION_STATUS[name] !== "PENDING" && SESSION_STATUS[name] !== "RUNNING" ? " (" + data.reason + ")" : "") });
    }
    bell.items.unshift(item);
    bell.items = bell.items.slice(0, 50);
    bell.unread += 1;
    saveBell();
    renderBell();
  }
  // SSE has no wildcard listener: these are the events the manager sends to a user's bell.
  // Add a name here when a feature starts publishing a new one.
  const BELL_EVENTS = [
    "notification", "bgtask_updated", "bgtask_done", "bgtask_failed", "bgtask_cancelled",
    "session_enqueued", "session_started", "session_terminated", "session_failure", "session_success",
    "session_cancelled", "session_scheduled",
  ];
  function connectBell() {
    if (!document.getElementById("wb-bell") || !window.EventSource) return;
    const source = new EventSource("/func/events/notifications");
    source.onmessage = (e) => onEvent("message", e.data);
    for (const name of BELL_EVENTS) source.addEventListener(name, (e) => onEvent(name, e.data));
    window.addEventListener("pagehide", () => source.close());
  }
  document.addEventListener("click", (e) => {
    if (e.target.closest("#wb-bell-clear")) { bell.items = []; bell.unread = 0; saveBell(); renderBell(); }
  });
  document.addEventListener("shown.bs.dropdown", (e) => {
    if (e.target.id === "wb-bell") { bell.unread = 0; saveBell(); renderBell(); }
  });

  document.addEventListener("DOMContentLoaded", () => {
    formatTimes(document);
    loadBell();
    renderBell();
    connectBell();
    if (bell.items.some((i) => i.tracking)) startPolling();
  });
})();
