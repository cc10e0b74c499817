/* Data page: what htmx cannot do.  The create dialog's dependent fields; the folder explorer's
   uploads (tus through the storage-proxy, files and whole folders, drag & drop, progress per file,
   resumed after a page reload), downloads (a token from the manager, then the storage-proxy's URL)
   and moving entries (selection, the move form, dragging entries onto a directory). */
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
    const moveTo = e.target.closest?.("#explorer-move-to");
    if (moveTo) { e.preventDefault(); e.stopPropagation(); showMoveForm(false); }
  }, true);
  /* the mkdir form: focus its field when it opens */
  document.addEventListener("shown.bs.collapse", (e) => {
    if (e.target.id === "explorer-mkdir") e.target.querySelector("input[name=name]")?.focus();
  });

  /* -- moving entries into another directory of the folder ------------------------------------- */
  const MOVE_TYPE = "application/x-workbay-entries";
  const moveForm = () => document.getElementById("explorer-move");
  const selectBoxes = () => [...document.querySelectorAll("#explorer-table [data-wb-select]")];

  function syncSelection() {
    const form = moveForm();
    if (!form) return;
    const boxes = selectBoxes();
    const chosen = boxes.filter((b) => b.checked).length;
    const all = document.querySelector("#explorer-table [data-wb-select-all]");
    if (all) { all.checked = chosen > 0 && chosen === boxes.length; all.indeterminate = chosen > 0 && chosen < boxes.length; }
    form.querySelector("[data-wb-move-open]").disabled = !chosen;
    form.querySelector("[data-wb-move-count]").textContent = chosen ? fmt(strings().selected, { count: chosen }) : "";
    boxes.forEach((b) => b.closest("tr")?.classList.toggle("table-active", b.checked));
    if (!chosen) showMoveForm(false);
  }

  function showMoveForm(open) {
    const form = moveForm();
    if (!form) return;
    const to = form.querySelector("#explorer-move-to");
    to.hidden = !open;
    form.querySelector("[data-wb-move-help]").hidden = !open;
    form.querySelector("[data-wb-move-open]").setAttribute("aria-expanded", open ? "true" : "false");
    if (open) { const field = to.querySelector("input[name=destination]"); field.focus(); field.select(); }
  }

  function selectOnly(paths) {
    selectBoxes().forEach((b) => { b.checked = paths.includes(b.value); });
    syncSelection();
  }

  // a refused move comes back with its entries still chosen
  document.addEventListener("htmx:afterSettle", () => syncSelection());
  document.addEventListener("change", (e) => {
    if (e.target.closest("[data-wb-select-all]")) {
      selectBoxes().forEach((b) => { b.checked = e.target.checked; });
      syncSelection();
    } else if (e.target.closest("[data-wb-select]")) {
      syncSelection();
    }
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-wb-move-open]")) { showMoveForm(true); return; }
    if (e.target.closest("[data-wb-move-cancel]")) { showMoveForm(false); return; }
    const one = e.target.closest("[data-wb-move-one]");
    if (one) { selectOnly([one.dataset.wbMoveOne]); showMoveForm(true); }
  });

  /* drag entries onto a directory row or a breadcrumb: the checked ones when the dragged row is
     checked, else that row alone; the move form then submits as if typed */
  const isMoveDrag = (e) => [...(e.dataTransfer?.types || [])].includes(MOVE_TYPE);
  let dragged = [];
  document.addEventListener("dragstart", (e) => {
    const row = e.target.closest?.("#explorer-table tr[draggable=true]");
    if (!row) return;
    const box = row.querySelector("[data-wb-select]");
    dragged = box && box.checked ? selectBoxes().filter((b) => b.checked).map((b) => b.value) : [row.dataset.path];
    e.dataTransfer.setData(MOVE_TYPE, JSON.stringify(dragged));
    e.dataTransfer.setData("text/plain", dragged.join("\n"));
    e.dataTransfer.effectAllowed = "move";
  });
  const moveTarget = (e) => e.target.closest?.("#explorer-files [data-wb-move-target]");
  document.addEventListener("dragover", (e) => {
    const target = moveTarget(e);
    if (!target || !isMoveDrag(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    target.classList.add("table-primary", "wb-move-over");
  });
  document.addEventListener("dragleave", (e) => {
    const target = moveTarget(e);
    if (target && !target.contains(e.relatedTarget)) target.classList.remove("table-primary", "wb-move-over");
  });
  document.addEventListener("drop", (e) => {
    if (!isMoveDrag(e)) return;
    e.preventDefault();
    const target = moveTarget(e);
    document.querySelectorAll(".wb-move-over").forEach((el) => el.classList.remove("table-primary", "wb-move-over"));
    let paths = [];
    try { paths = JSON.parse(e.dataTransfer.getData(MOVE_TYPE) || "[]"); } catch (_) { paths = dragged; }
    const destination = target?.dataset.wbMoveTarget;
    const form = moveForm();
    // onto nothing, or a directory onto itself: no move
    if (!form || !destination || !paths.length || paths.some((p) => "/" + p === destination)) return;
    selectOnly(paths);
    form.querySelector("input[name=destination]").value = destination;
    form.requestSubmit();
  });
  document.addEventListener("dragend", () => { dragged = []; });

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

  /* -- resuming after a page reload -------------------------------------------------------------
     The manager's request-upload takes the `session` of an earlier upload of the same path and
     size and answers a fresh token for it; the storage-proxy kept the bytes that arrived (HEAD
     says how many).  So each upload's session is kept in localStorage under the folder, the path
     and the file's name, size and modification time, until it completes or goes stale. */
  const RESUME_PREFIX = "wb-upload-resume:";
  const RESUME_TTL_MS = 24 * 3600 * 1000; // the storage-proxy drops uploads idle this long

  const resumeKey = (fid, relpath, file) =>
    RESUME_PREFIX + JSON.stringify([fid, relpath, file.name, file.size, file.lastModified]);

  function readResume(key) {
    let entry = null;
    try { entry = JSON.parse(localStorage.getItem(key) || "null"); } catch (_) { entry = null; }
    if (entry && entry.session && Date.now() - (entry.savedAt || 0) < RESUME_TTL_MS) return entry;
    forgetResume(key);
    return null;
  }
  function saveResume(key, entry) {
    try { localStorage.setItem(key, JSON.stringify({ ...entry, savedAt: Date.now() })); } catch (_) { /* storage off or full: no resume */ }
  }
  function forgetResume(key) {
    try { localStorage.removeItem(key); } catch (_) { /* storage off */ }
  }
  function dropStaleResumes() {
    try {
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const key = localStorage.key(i);
        if (key && key.startsWith(RESUME_PREFIX)) readResume(key); // removes what expired
      }
    } catch (_) { /* storage off */ }
  }
  dropStaleResumes();

  async function storedOffset(url) {
    try {
      const resp = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
      return resp.ok ? Number(resp.headers.get("Upload-Offset") || 0) : 0;
    } catch (_) {
      return 0;
    }
  }

  function note(li, text) {
    if (!li) return;
    let el = li.querySelector(".wb-upload-note");
    if (!el) {
      el = document.createElement("div");
      el.className = "small text-body-secondary wb-upload-note";
      li.querySelector(".wb-upload-bar").before(el);
    }
    el.textContent = text;
  }

  function tusUpload(file, url, li, onAccepted) {
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
        onChunkComplete: (_, accepted) => onAccepted(accepted),
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
          const error = new Error(reason);
          error.status = res ? res.getStatus() : 0;
          reject(error);
        },
      });
      upload.start();
    });
  }

  async function uploadOne(fid, job, li) {
    const path = job.relpath;
    const size = job.file.size;
    const key = resumeKey(fid, path, job.file);
    const earlier = size ? readResume(key) : null;
    let ticket = null;
    if (earlier) {
      try {
        ticket = await api("POST", folderPath(fid) + "/request-upload", { path: path, size: size, session: earlier.session });
      } catch (_) {
        forgetResume(key); // start over below; a real refusal shows there
      }
    }
    ticket = ticket || await api("POST", folderPath(fid) + "/request-upload", { path: path, size: size });
    if (size === 0) { setProgress(li, 1, 1); return; } // created by request-upload
    const url = new URL(ticket.url, location.href);
    url.searchParams.set("token", ticket.token);
    const entry = { session: ticket.session, url: ticket.url, offset: 0 };
    if (earlier) {
      entry.offset = await storedOffset(url.href);
      if (entry.offset > 0 && entry.offset < size) {
        note(li, fmt(strings().resumed, { percent: Math.floor((entry.offset / size) * 100) + "%" }));
        setProgress(li, entry.offset, size);
      }
    }
    saveResume(key, entry);
    try {
      await tusUpload(job.file, url.href, li, (accepted) => saveResume(key, { ...entry, offset: accepted }));
    } catch (err) {
      // refused for good (quota, permission, path): nothing to resume
      if (err.status >= 400 && err.status < 500 && err.status !== 409 && err.status !== 423) forgetResume(key);
      throw err;
    }
    forgetResume(key);
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
    const uploaded = done === 1 ? s.uploadedOne : fmt(s.uploaded, { count: done });
    if (summary) summary.textContent = failed ? fmt(s.uploadedSome, { count: done, failed: failed }) : uploaded;
    if (done) toast(uploaded, "success");
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
    if (!zone || isMoveDrag(e) || explorer()?.dataset.writable !== "true") return;
    e.preventDefault();
    dragDepth++;
    zone.classList.add("wb-dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (dropzone(e.target) && !isMoveDrag(e) && explorer()?.dataset.writable === "true") { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; }
  });
  document.addEventListener("dragleave", (e) => {
    const zone = dropzone(e.target);
    if (!zone) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) zone.classList.remove("wb-dragging");
  });
  document.addEventListener("drop", async (e) => {
    const zone = dropzone(e.target);
    if (!zone || isMoveDrag(e)) return;
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
