/* The NEO session launcher: what htmx cannot do.  Sliders and number fields kept in step, presets
   filling them, the version list following the environment, environment-variable rows, folder
   search, the scheduled start's "in a minute" preview, the form mirrored into the URL (reload keeps
   it), the recent history (last 5 launches, per user, in this browser) and handing a launched
   session to the notification bell. */
(function () {
  "use strict";

  const form = () => document.getElementById("launcher-form");
  const root = () => document.getElementById("launcher");
  const strings = () => JSON.parse(document.getElementById("launcher-strings")?.textContent || "{}");
  const fmt = (text, values) => String(text || "").replace(/%\((\w+)\)s/g, (_, k) => (values && k in values ? values[k] : ""));
  const lang = document.documentElement.lang || "en";
  const HISTORY_SIZE = 5;

  /* -- the URL holds the form ----------------------------------------------------------------- */
  function formQuery(extra) {
    const f = form();
    if (!f) return "";
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(f)) {
      if (k === "csrf_token" || v === "") continue;
      if ((k === "ev_k" || k === "ev_v")) continue;
      params.append(k, v);
    }
    // variables go in pairs; a row with neither part is dropped
    f.querySelectorAll(".wb-env-row").forEach((row) => {
      const k = row.querySelector('[name="ev_k"]').value, v = row.querySelector('[name="ev_v"]').value;
      if (k || v) { params.append("ev_k", k); params.append("ev_v", v); }
    });
    params.delete("step");
    params.set("step", root()?.dataset.step || "1");
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params.toString();
  }
  let syncTimer = null;
  function syncUrl() {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => {
      if (!form()) return;
      history.replaceState(history.state, "", "/session/start?" + formQuery());
    }, 150);
  }

  /* -- sliders, numbers, presets ------------------------------------------------------------- */
  function setValue(id, value) {
    const el = document.getElementById(id);
    if (!el || value === undefined || value === "") return;
    el.value = value;
    const twin = el.dataset.wbSync && document.getElementById(el.dataset.wbSync);
    if (twin) twin.value = value;
  }
  function applyPreset(select) {
    const opt = select.selectedOptions[0];
    if (!opt || opt.value === "custom") return;
    setValue("l-cpu", opt.dataset.cpu);
    setValue("l-mem", opt.dataset.mem);
    setValue("l-shmem", opt.dataset.shmem || "0");
    if (opt.dataset.accSlot) { setValue("l-acc-slot", opt.dataset.accSlot); setValue("l-acc", opt.dataset.acc); }
    else setValue("l-acc", "0");
    limitShmem();
  }
  function limitShmem() {
    const mem = parseFloat(document.getElementById("l-mem")?.value || "0");
    const range = document.getElementById("l-shmem-range");
    if (range && mem > 0) range.max = String(mem);
  }
  function hpcDefaults() {
    const hpc = document.getElementById("l-hpc");
    if (hpc && !hpc.checked) {
      const cpu = document.getElementById("l-cpu")?.value;
      for (const id of ["l-omp", "l-openblas"]) { const el = document.getElementById(id); if (el && cpu) el.value = cpu; }
    }
  }

  /* -- environment → versions ------------------------------------------------------------------ */
  function filterVersions(envSelect) {
    const versions = document.getElementById("l-version");
    if (!versions) return;
    let first = null, keep = false;
    for (const opt of versions.options) {
      const mine = opt.dataset.env === envSelect.value;
      opt.hidden = !mine; opt.disabled = !mine;
      if (mine && !first) first = opt;
      if (mine && opt.selected) keep = true;
    }
    if (!keep && first) versions.value = first.value;
  }

  /* -- scheduled start: an ISO value for the server, a relative preview for people ------------ */
  const relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  function relativeText(date) {
    if (!relative) return date.toLocaleString(lang);
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
    }
    return relative.format(seconds >= 0 ? 1 : -1, "minute");  // "in 1 minute" / "1 minute ago"
  }
  function syncStart() {
    const local = document.getElementById("l-starts-local");
    const iso = document.getElementById("l-starts-at");
    const preview = document.getElementById("l-starts-preview");
    if (!local || !iso || !preview) return;
    if (local.disabled || !local.value) {
      iso.value = "";
      preview.textContent = local.disabled ? "" : strings().chooseTime || "";
      return;
    }
    const date = new Date(local.value);  // the browser's time zone
    if (isNaN(date)) { iso.value = ""; return; }
    iso.value = date.toISOString();
    preview.textContent = relativeText(date) + (date.getTime() < Date.now() ? " · " + (strings().past || "") : "");
  }
  function defaultStart() {
    const local = document.getElementById("l-starts-local");
    if (!local || local.value) return;
    const d = new Date(Date.now() + 60 * 1000);
    d.setSeconds(0, 0);
    const pad = (n) => String(n).padStart(2, "0");
    local.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  /* -- folders: search, select a folder just created ------------------------------------------- */
  function filterFolders(input) {
    const q = input.value.trim().toLowerCase();
    let shown = 0;
    document.querySelectorAll("#mount-table tbody tr").forEach((tr) => {
      const match = !q || tr.dataset.folder.toLowerCase().includes(q);
      tr.hidden = !match;
      if (match) shown += 1;
    });
    const none = document.getElementById("l-folder-nomatch");
    if (none) none.hidden = shown > 0;
  }
  function reload(extra) {
    const url = "/session/start?" + formQuery(extra);
    htmx.ajax("GET", url, { target: "#launcher", select: "#launcher", swap: "outerHTML" }).then(() => {
      history.replaceState(history.state, "", url);
    });
  }
  document.body.addEventListener("htmx:afterRequest", (e) => {
    // the create-folder dialog (Data page's) answered success: mount the new folder
    if (!root() || !e.detail.successful) return;
    const cfg = e.detail.requestConfig || {};
    if (cfg.verb !== "post" || !/^\/data\/?$/.test(cfg.path || "")) return;
    if (!(e.detail.xhr.getResponseHeader("HX-Trigger") || "").includes("wb:close-modal")) return;
    const p = cfg.parameters;
    const name = p && (typeof p.get === "function" ? p.get("name") : p.name);
    if (!name) return;
    const f = form();
    const fd = new URLSearchParams(formQuery({ step: "3" }));
    fd.append("mount", name);
    const url = "/session/start?" + fd.toString();
    htmx.ajax("GET", url, { target: "#launcher", select: "#launcher", swap: "outerHTML" }).then(() => {
      history.replaceState(history.state, "", url);
    });
    void f;
  });

  /* -- recent history (CS-11) -------------------------------------------------------------------- */
  function historyKey() { return root()?.dataset.historyKey || "workbay:launcher-history"; }
  function loadHistory() {
    try { const items = JSON.parse(localStorage.getItem(historyKey()) || "[]"); return Array.isArray(items) ? items : []; } catch (_) { return []; }
  }
  function saveHistory(entry) {
    const items = loadHistory().filter((i) => i.query !== entry.query);
    items.unshift(entry);
    localStorage.setItem(historyKey(), JSON.stringify(items.slice(0, HISTORY_SIZE)));
  }
  function openHistory() {
    const tpl = document.getElementById("launcher-history-template");
    const host = document.getElementById("modal-host");
    if (!tpl || !host) return;
    const open = host.querySelector(".modal");
    if (open) { bootstrap.Modal.getInstance(open)?.dispose(); }
    host.innerHTML = "";
    host.appendChild(tpl.content.cloneNode(true));
    const modal = host.querySelector(".modal");
    const list = modal.querySelector("[data-wb-history-list]");
    const s = strings();
    const items = loadHistory();
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "list-group-item text-body-secondary text-center py-4";
      li.textContent = s.noHistory;
      list.appendChild(li);
    }
    const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    items.forEach((item, i) => {
      const li = document.createElement("li");
      li.className = "list-group-item d-flex align-items-center gap-3";
      li.dataset.testid = "history-item";
      const text = document.createElement("div");
      text.className = "flex-grow-1 small";
      const title = document.createElement("div");
      title.className = "fw-semibold";
      const sm = item.summary || {};
      title.textContent = (sm.name || "") + (sm.name ? " · " : "") + (sm.type === "batch" ? s.batch : s.interactive);
      const meta = document.createElement("div");
      meta.className = "text-body-secondary";
      const res = sm.resources || {};
      const parts = [sm.image, res.cpu ? res.cpu + " CPU" : "", res.mem ? String(res.mem).replace(/m$/, " MiB") : "",
        s.folders + ": " + ((sm.mounts || []).join(", ") || s.none)];
      if ((sm.count || 1) > 1) parts.push(fmt(s.sessions, { count: sm.count }));
      meta.textContent = parts.filter(Boolean).join(" · ");
      const when = document.createElement("div");
      when.className = "text-body-secondary";
      const time = document.createElement("time");
      time.dateTime = new Date(item.at).toISOString();
      time.title = time.dateTime;
      time.textContent = timeFormat.format(new Date(item.at));
      when.appendChild(time);
      text.append(title, meta, when);
      const apply = document.createElement("a");
      apply.className = "btn btn-sm btn-primary";
      apply.href = "/session/start?" + item.query + "&step=5";
      apply.textContent = s.apply;
      apply.setAttribute("aria-describedby", "wb-history-" + i);
      title.id = "wb-history-" + i;
      li.append(text, apply);
      list.appendChild(li);
    });
    modal.addEventListener("hidden.bs.modal", () => { if (modal.parentNode === host) host.innerHTML = ""; }, { once: true });
    modal.addEventListener("shown.bs.modal", () => { modal.dataset.wbReady = "true"; (modal.querySelector(".btn-primary") || modal.querySelector(".btn-close")).focus(); }, { once: true });
    bootstrap.Modal.getOrCreateInstance(modal).show();
  }

  /* -- launched: remember it, and let the bell follow it until it runs ------------------------- */
  document.body.addEventListener("wb:session-launched", (e) => {
    const d = e.detail || {};
    if (d.query !== undefined) saveHistory({ at: Date.now(), query: d.query, summary: d.summary || {} });
    if (window.wbBellTrack) window.wbBellTrack(d.sessions || [], d.message || "");
    // the Sessions page opens the app launcher when it runs (static/js/apps.js)
    const first = (d.sessions || [])[0];
    if (first && (d.summary?.type || "interactive") === "interactive") {
      try { sessionStorage.setItem("workbay:open-apps", JSON.stringify([{ id: first.id, at: Date.now() }])); } catch (_) { /* private mode */ }
    }
  });

  /* -- events -------------------------------------------------------------------------------------- */
  document.addEventListener("input", (e) => {
    const t = e.target;
    if (!root() || !t.closest || !t.closest("#launcher-form")) return;
    if (t.dataset.wbSync) {
      const twin = document.getElementById(t.dataset.wbSync);
      if (twin) twin.value = t.value;
      const preset = document.getElementById("l-preset");
      if (preset && (t.dataset.wbCustom !== undefined || twin?.dataset.wbCustom !== undefined)) preset.value = "custom";
      if (t.id.startsWith("l-mem")) limitShmem();
      if (t.id.startsWith("l-cpu")) hpcDefaults();
    }
    if (t.matches("[data-wb-folder-search]")) { filterFolders(t); return; }
    if (t.id === "l-starts-local") syncStart();
    syncUrl();
  });
  document.addEventListener("change", (e) => {
    const t = e.target;
    if (!root() || !t.closest || !t.closest("#launcher-form")) return;
    if (t.matches("[data-wb-type]")) {
      const batch = document.getElementById("batch-config");
      if (batch) batch.hidden = t.value !== "batch";
    }
    if (t.matches("[data-wb-environment]")) filterVersions(t);
    if (t.matches("[data-wb-preset]")) applyPreset(t);
    if (t.dataset.wbEnable) {
      t.dataset.wbEnable.split(" ").forEach((id) => { const el = document.getElementById(id); if (el) el.disabled = !t.checked; });
      if (t.id === "l-sched") { if (t.checked) defaultStart(); syncStart(); }
      if (t.id === "l-hpc") hpcDefaults();
    }
    if (t.dataset.wbShow) {
      const el = document.getElementById(t.dataset.wbShow);
      if (el) el.hidden = !t.checked;
    }
    syncUrl();
  });
  document.addEventListener("click", (e) => {
    if (!root()) return;
    const add = e.target.closest("[data-wb-env-add]");
    if (add) {
      const tpl = document.getElementById("env-row-template");
      const box = document.getElementById("env-vars");
      if (tpl && box) { box.appendChild(tpl.content.cloneNode(true)); box.lastElementChild.querySelector("input")?.focus(); }
      return;
    }
    const remove = e.target.closest("[data-wb-env-remove]");
    if (remove) {
      const box = document.getElementById("env-vars");
      const row = remove.closest(".wb-env-row");
      if (box && row) {
        if (box.querySelectorAll(".wb-env-row").length > 1) row.remove();
        else row.querySelectorAll("input").forEach((i) => { i.value = ""; });
        syncUrl();
      }
      return;
    }
    if (e.target.closest("[data-wb-history]")) { openHistory(); return; }
    const goto = e.target.closest("[data-wb-goto-step]");
    if (goto) reload({ step: goto.dataset.wbGotoStep });
    if (e.target.closest("[data-wb-reset]")) {
      // Reset: a fresh form (no query string); keep nothing of the current one
      history.replaceState(history.state, "", "/session/start");
    }
  });
  document.addEventListener("keydown", (e) => {
    // the owner e-mail field: Enter searches instead of moving to the next step
    if (e.key === "Enter" && e.target.id === "l-owner-email") {
      e.preventDefault();
      document.getElementById("l-owner-search")?.click();
    }
  });

  function init() {
    if (!root()) return;
    const env = document.getElementById("l-environment");
    if (env) filterVersions(env);
    limitShmem();
    hpcDefaults();
    const sched = document.getElementById("l-sched");
    if (sched && sched.checked) { defaultStart(); syncStart(); }
    const search = document.querySelector("[data-wb-folder-search]");
    if (search && search.value) filterFolders(search);
    if (window.wbFormatTimes) window.wbFormatTimes(root());
  }
  document.addEventListener("DOMContentLoaded", () => {
    init();
    htmx.onLoad((el) => { if (el.id === "launcher" || el.querySelector?.("#launcher")) init(); });
  });
  setInterval(() => { const sched = document.getElementById("l-sched"); if (sched && sched.checked) syncStart(); }, 30000);
})();
