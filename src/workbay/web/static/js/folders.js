/* Data page: what htmx cannot do.  The create dialog's dependent fields; the folder explorer's
   uploads (tus through the storage-proxy, files and whole folders, drag & drop, progress per file)
   and downloads (a token from the manager, then the storage-proxy's URL). */
(function () {
  "use strict";

  const strings = () => JSON.parse(document.getElementById("wb-folder-strings")?.textContent || "{}");
  const fmt = (text, values) => String(text || "").replace(/%\((\w+)\)s/g, (_, k) => (values && k in values ? values[k] : ""));
  const toast = (message, level) => window.wbToast && window.wbToast(message, level);
  const PARALLEL = 3;
  const CHUNK = 16 * 1024 * 1024;

  /* -- the manager, through the webserver's /func proxy (the session cookie signs it) --------- */
  async function problemText(resp) {
    try {
      const body = await resp.json();
      return [body.title, body.msg].filter(Boolean).join(" ") || resp.statusText || "HTTP " + resp.status;
    } catch (_) {
      return resp.statusText || "HTTP " + resp.status;
    }
  }
  async function api(method, path, body) {
    const resp = await fetch("/func" + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!resp.ok) {
      const err = new Error(await problemText(resp));
      err.status = resp.status;
      throw err;
    }
    return resp.status === 204 ? {} : resp.json();
  }
  const folderPath = (fid) => "/folders/" + encodeURIComponent(fid);

  /* -- create dialog: capacity of the chosen host, project fields, cloneable -------------------- */
  function syncCreateForm(form) {
    const host = form.querySelector("[data-wb-host-select]")?.value;
    form.querySelectorAll("[data-wb-host-capacity]").forEach((el) => { el.hidden = el.dataset.wbHostCapacity !== host; });
    const type = form.querySelector("input[name=type]:checked")?.value;
    form.querySelectorAll("[data-wb-when-type]").forEach((el) => { el.hidden = el.dataset.wbWhenType !== type; });
    const mode = form.querySelector("input[name=usage_mode]:checked")?.value;
    form.querySelectorAll("[data-wb-when-mode]").forEach((el) => { el.hidden = el.dataset.wbWhenMode !== mode; });
  }
  document.addEventListener("change", (e) => {
    const form = e.target.closest("[data-wb-folder-form]");
    if (form) syncCreateForm(form);
  });
  document.addEventListener("reset", (e) => {
    const form = e.target.closest("[data-wb-folder-form]");
    if (form) setTimeout(() => syncCreateForm(form), 0);
  });

  /* -- explorer helpers ------------------------------------------------------------------------- */
  const explorer = () => document.querySelector("#modal-host [data-wb-explorer]");
  const currentPath = () => document.getElementById("explorer-files")?.dataset.path || "";
  const joinPath = (...parts) => parts.filter(Boolean).join("/").replace(/\/+/g, "/").replace(/^\//, "");

  function refreshListing(fid, path) {
    if (!document.getElementById("explorer-files")) return;
    const url = "/data/" + encodeURIComponent(fid) + "/files" + (path ? "?path=" + encodeURIComponent(path) : "");
    htmx.ajax("GET", url, { target: "#explorer-files", swap: "outerHTML" });
  }

  /* inline rename / delete rows */
  document.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-wb-reveal-row]");
    if (!btn) return;
    const row = document.getElementById(btn.dataset.wbRevealRow);
    if (!row) return;
    row.hidden = !row.hidden;
    if (!row.hidden) {
      const field = row.querySelector("input:not([type=hidden])") || row.querySelector("button[type=submit]");
      if (field) { field.focus(); if (field.select) field.select(); }
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const row = e.target.closest?.(".wb-inline-row");
    if (row) { e.preventDefault(); e.stopPropagation(); row.hidden = true; }
  }, true);
  /* the mkdir form: focus its field when it opens */
  document.addEventListener("shown.bs.collapse", (e) => {
    if (e.target.id === "explorer-mkdir") e.target.querySelector("input[name=name]")?.focus();
  });

  /* -- downloads ---------------------------------------------------------------------------------- */
  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-wb-download]");
    if (!btn) return;
    const root = explorer();
    if (!root) return;
    const archive = btn.dataset.wbArchive === "true";
    btn.disabled = true;
    try {
      const ticket = await api("POST", folderPath(root.dataset.folderId) + "/request-download",
        archive ? { path: btn.dataset.wbDownload, archive: true } : { path: btn.dataset.wbDownload });
      const url = new URL(ticket.url, location.href);
      url.searchParams.set("token", ticket.token);
      if (archive) url.searchParams.set("archive", "true");
      const a = document.createElement("a");
      a.href = url.href;
      a.rel = "noopener";
      a.setAttribute("download", "");
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (err) {
      toast(fmt(strings().downloadFailed, { reason: err.message }), "danger");
    } finally {
      btn.disabled = false;
    }
  });

  /* -- uploads ------------------------------------------------------------------------------------ */
  function uploadPanel() {
    const panel = document.getElementById("explorer-uploads");
    if (panel) panel.hidden = false;
    return panel;
  }

  function addRow(panel, relpath) {
    const li = document.createElement("li");
    li.className = "wb-upload";
    li.dataset.upload = relpath;
    li.innerHTML = '<div class="d-flex gap-2 small"><span class="wb-upload-name text-truncate"></span><span class="ms-auto wb-upload-state text-body-secondary"></span></div>' +
      '<div class="progress wb-upload-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="progress-bar" style="width: 0%"></div></div>';
    li.querySelector(".wb-upload-name").textContent = relpath;
    li.querySelector(".wb-upload-state").textContent = strings().waiting || "";
    li.querySelector(".progress").setAttribute("aria-label", relpath);
    panel?.querySelector("[data-wb-upload-list]")?.appendChild(li);
    return li;
  }

  function setProgress(li, done, total) {
    if (!li) return;
    const pct = total ? Math.floor((done / total) * 100) : 100;
    const bar = li.querySelector(".progress");
    bar.setAttribute("aria-valuenow", String(pct));
    bar.firstElementChild.style.width = pct + "%";
    li.querySelector(".wb-upload-state").textContent = pct + "%";
  }

  function finish(li, ok, reason) {
    if (!li) return;
    li.classList.add(ok ? "wb-upload-done" : "wb-upload-failed");
    const bar = li.querySelector(".progress-bar");
    bar.classList.add(ok ? "bg-success" : "bg-danger");
    if (ok) { bar.style.width = "100%"; li.querySelector(".progress").setAttribute("aria-valuenow", "100"); }
    li.querySelector(".wb-upload-state").textContent = ok ? strings().done : strings().failed;
    if (!ok) {
      const why = document.createElement("div");
      why.className = "small text-danger wb-upload-error";
      why.setAttribute("role", "alert");
      why.textContent = reason;
      li.appendChild(why);
    }
  }

  function tusUpload(file, url, li) {
    return new Promise((resolve, reject) => {
      const upload = new tus.Upload(file, {
        uploadUrl: url,
        chunkSize: CHUNK,
        retryDelays: [0, 1000, 3000, 5000],
        storeFingerprintForResuming: false,
        removeFingerprintOnSuccess: true,
        onShouldRetry: (err) => {
          const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
          return status === 0 || status === 409 || status === 423 || status >= 500;
        },
        onProgress: (sent, total) => setProgress(li, sent, total),
        onSuccess: () => resolve(),
        onError: (err) => {
          const res = err.originalResponse;
          let reason = err.message;
          if (res) {
            try {
              const body = JSON.parse(res.getBody() || "{}");
              reason = [body.title, body.msg].filter(Boolean).join(" ") || reason;
            } catch (_) { /* not problem+json */ }
            if (res.getStatus() === 413) reason = reason || strings().quotaExceeded;
          }
          reject(new Error(reason));
        },
      });
      upload.start();
    });
  }

  async function uploadOne(fid, job, li) {
    const path = job.relpath;
    const ticket = await api("POST", folderPath(fid) + "/request-upload", { path: path, size: job.file.size });
    if (job.file.size === 0) { setProgress(li, 1, 1); return; } // created by request-upload
    const url = new URL(ticket.url, location.href);
    url.searchParams.set("token", ticket.token);
    await tusUpload(job.file, url.href, li);
  }

  /** jobs: [{file, relpath}] relative to the explorer's current directory; dirs: empty folders */
  async function uploadAll(jobs, dirs) {
    const root = explorer();
    if (!root) return;
    const s = strings();
    if (root.dataset.writable !== "true") { toast(s.readOnly, "warning"); return; }
    if (!jobs.length && !(dirs || []).length) { toast(s.noFiles, "warning"); return; }
    const fid = root.dataset.folderId;
    const base = currentPath();
    const panel = uploadPanel();
    const summary = panel?.querySelector("[data-wb-upload-summary]");
    const list = jobs.map((j) => ({ file: j.file, relpath: joinPath(base, j.relpath) }));
    const rows = list.map((j) => addRow(panel, j.relpath));
    let done = 0;
    let failed = 0;
    const say = () => { if (summary) summary.textContent = fmt(s.uploading, { done: done + failed, total: list.length }); };
    say();
    for (const dir of dirs || []) {
      try { await api("POST", folderPath(fid) + "/mkdir", { path: joinPath(base, dir), parents: true, exist_ok: true }); } catch (_) { /* shown below if files fail */ }
    }
    let next = 0;
    async function worker() {
      while (next < list.length) {
        const i = next++;
        try {
          await uploadOne(fid, list[i], rows[i]);
          finish(rows[i], true);
          done++;
        } catch (err) {
          const reason = err.status === 413 && !err.message ? s.quotaExceeded : err.message;
          finish(rows[i], false, reason);
          toast(fmt(s.uploadFailed, { name: list[i].relpath, reason: reason }), "danger");
          failed++;
        }
        say();
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL, list.length) }, worker));
    if (summary) summary.textContent = failed ? fmt(s.uploadedSome, { count: done, failed: failed }) : fmt(s.uploaded, { count: done });
    if (done) toast(fmt(s.uploaded, { count: done }), "success");
    refreshListing(fid, currentPath());
    document.body.dispatchEvent(new CustomEvent("wb:changed", { bubbles: true }));
  }

  document.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-wb-pick]");
    if (btn) document.getElementById(btn.dataset.wbPick)?.click();
  });
  document.addEventListener("change", (e) => {
    const input = e.target.closest("[data-wb-upload-input]");
    if (!input) return;
    const jobs = [...input.files].map((f) => ({ file: f, relpath: f.webkitRelativePath || f.name }));
    input.value = "";
    uploadAll(jobs, []);
  });

  /* drag & drop of files and whole folders (structure kept) */
  function readAll(reader) {
    return new Promise((resolve, reject) => {
      const out = [];
      const more = () => reader.readEntries((batch) => {
        if (!batch.length) { resolve(out); return; }
        out.push(...batch);
        more();
      }, reject);
      more();
    });
  }
  async function walk(entry, jobs, dirs) {
    const rel = entry.fullPath.replace(/^\/+/, "");
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      jobs.push({ file: file, relpath: rel || file.name });
    } else if (entry.isDirectory) {
      const children = await readAll(entry.createReader());
      if (!children.length) dirs.push(rel);
      for (const child of children) await walk(child, jobs, dirs);
    }
  }
  function dropzone(target) { return target.closest?.("[data-wb-dropzone]"); }
  let dragDepth = 0;
  document.addEventListener("dragenter", (e) => {
    const zone = dropzone(e.target);
    if (!zone || explorer()?.dataset.writable !== "true") return;
    e.preventDefault();
    dragDepth++;
    zone.classList.add("wb-dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (dropzone(e.target) && explorer()?.dataset.writable === "true") { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; }
  });
  document.addEventListener("dragleave", (e) => {
    const zone = dropzone(e.target);
    if (!zone) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) zone.classList.remove("wb-dragging");
  });
  document.addEventListener("drop", async (e) => {
    const zone = dropzone(e.target);
    if (!zone) return;
    e.preventDefault();
    dragDepth = 0;
    zone.classList.remove("wb-dragging");
    if (explorer()?.dataset.writable !== "true") { toast(strings().readOnly, "warning"); return; }
    const items = [...(e.dataTransfer.items || [])];
    // entries must be taken while the event is being handled
    const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null)).filter(Boolean);
    const jobs = [];
    const dirs = [];
    if (entries.length) {
      for (const entry of entries) await walk(entry, jobs, dirs);
    } else {
      for (const f of e.dataTransfer.files || []) jobs.push({ file: f, relpath: f.name });
    }
    uploadAll(jobs, dirs);
  });

  window.wbFolders = { uploadAll: uploadAll };
})();
