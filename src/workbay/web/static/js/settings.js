/* User settings: search, "display only changes" (General tab) and the Logs tab (UI-6). */
(function () {
  "use strict";
  const strings = JSON.parse(document.getElementById("wb-strings")?.textContent || "{}");

  /* -- General: search and "display only changes" ----------------------------------------- */
  function filterSettings() {
    const query = (document.getElementById("settings-search")?.value || "").trim().toLowerCase();
    const onlyChanges = document.getElementById("settings-only-changes")?.checked;
    let shown = 0;
    document.querySelectorAll("[data-wb-setting]").forEach((row) => {
      const changed = row.dataset.current !== row.dataset.default;
      row.classList.toggle("wb-changed", changed);
      const visible = (!query || row.textContent.toLowerCase().includes(query)) && (!onlyChanges || changed);
      row.classList.toggle("d-none", !visible);
      if (visible) shown += 1;
    });
    document.getElementById("settings-none")?.classList.toggle("d-none", shown > 0);
  }

  /* -- Logs tab ------------------------------------------------------------------------------ */
  const PAGE = 20;
  let page = 1;
  function cell(key, text, cls, title) {
    const td = document.createElement("td");
    td.dataset.col = key;
    td.textContent = text === undefined || text === "" ? "-" : String(text);
    if (cls) td.className = cls;
    if (title) td.title = title;
    return td;
  }
  function shortUrl(url) {
    try { const u = new URL(url); return u.origin === location.origin ? u.pathname + u.search : url; } catch (_) { return url; }
  }
  function renderLogs() {
    const body = document.getElementById("logs-body");
    if (!body) return;
    const query = (document.getElementById("logs-search")?.value || "").trim().toLowerCase();
    const errorsOnly = document.getElementById("logs-errors-only")?.checked;
    const all = window.wbRequestLog.read().filter((x) => (!errorsOnly || x.error) &&
      (!query || JSON.stringify(x).toLowerCase().includes(query)));
    const pages = Math.max(1, Math.ceil(all.length / PAGE));
    page = Math.min(page, pages);
    const fmt = new Intl.DateTimeFormat(document.documentElement.lang || "en", { dateStyle: "medium", timeStyle: "medium" });
    body.innerHTML = "";
    for (const x of all.slice((page - 1) * PAGE, page * PAGE)) {
      const tr = document.createElement("tr");
      if (x.error) tr.className = "table-danger";
      tr.append(
        cell("timestamp", fmt.format(new Date(x.at)), "text-nowrap"),
        cell("status", x.status ? x.status + " " + (x.statusText || "") : "-", "text-nowrap"),
        cell("title", x.title), cell("message", x.message, "wb-truncate", x.message), cell("type", x.type),
        cell("method", x.method), cell("url", shortUrl(x.url), "wb-truncate", x.url), cell("params", x.params, "wb-truncate font-monospace small", x.params),
      );
      body.appendChild(tr);
    }
    document.getElementById("logs-empty")?.classList.toggle("d-none", all.length > 0);
    const total = document.getElementById("logs-total");
    if (total) {
      total.textContent = !all.length ? "" : (strings.logRange || "%(first)s–%(last)s of %(total)s")
        .replace("%(first)s", String((page - 1) * PAGE + 1))
        .replace("%(last)s", String(Math.min(page * PAGE, all.length)))
        .replace("%(total)s", String(all.length));
    }
    const nav = document.getElementById("logs-pages");
    if (nav) {
      nav.innerHTML = "";
      if (pages > 1) {
        const add = (label, target, disabled, active) => {
          const li = document.createElement("li");
          li.className = "page-item" + (disabled ? " disabled" : "") + (active ? " active" : "");
          const b = document.createElement("button");
          b.type = "button"; b.className = "page-link"; b.textContent = label;
          b.addEventListener("click", () => { page = target; renderLogs(); });
          li.appendChild(b); nav.appendChild(li);
        };
        add("‹", page - 1, page <= 1, false);
        const start = Math.max(1, Math.min(page - 2, pages - 4));
        for (let n = start; n <= Math.min(pages, start + 4); n++) add(String(n), n, false, n === page);
        add("›", page + 1, page >= pages, false);
      }
    }
    document.dispatchEvent(new Event("wb:rows-rendered"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("settings-general")) {
      filterSettings();
      document.getElementById("settings-search").addEventListener("input", filterSettings);
      document.getElementById("settings-only-changes").addEventListener("change", filterSettings);
      // a saved change updates the row's current value
      document.body.addEventListener("wb:preferences", (e) => {
        for (const [k, v] of Object.entries(e.detail || {})) {
          const control = document.querySelector(`[name="${k}"]:not([type=hidden])`);
          const row = control?.closest("[data-wb-setting]");
          if (row) row.dataset.current = typeof v === "boolean" ? (v ? "on" : "off") : String(v ?? "");
        }
        filterSettings();
      });
    }
    if (document.getElementById("logs-body")) {
      renderLogs();
      document.getElementById("logs-search").addEventListener("input", () => { page = 1; renderLogs(); });
      document.getElementById("logs-errors-only").addEventListener("change", () => { page = 1; renderLogs(); });
      document.getElementById("logs-refresh").addEventListener("click", renderLogs);
      document.getElementById("logs-clear").addEventListener("click", () => { window.wbRequestLog.clear(); page = 1; renderLogs(); });
    }
  });
})();
