/* Serving pages: the service form's small behaviours and the Validate log (a POST answered with
   text/event-stream, read with fetch since EventSource cannot POST); the token expiry picker. */
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const strings = () => { try { return JSON.parse($("#serving-strings").textContent); } catch (_) { return {}; } };

  function syncVariant() {
    const select = $("[data-sf-variant]");
    if (!select) return;
    document.querySelectorAll("[data-sf-variant-panel]").forEach((p) => { p.hidden = p.dataset.sfVariantPanel !== select.value; });
    document.querySelectorAll("[data-sf-only]").forEach((p) => { p.hidden = p.dataset.sfOnly !== select.value; });
  }
  function syncVersions() {
    const env = $("[data-sf-environment]");
    const version = $("[data-sf-version]");
    if (!env || !version) return;
    let first = null;
    let keep = false;
    version.querySelectorAll("option").forEach((o) => {
      const mine = o.dataset.env === env.value;
      o.hidden = !mine; o.disabled = !mine;
      if (mine && !first) first = o;
      if (mine && o.selected) keep = true;
    });
    if (!keep && first) first.selected = true;
  }
  function syncPreset() {
    const preset = $("[data-sf-preset]");
    if (!preset) return;
    document.querySelectorAll("[data-sf-custom]").forEach((el) => {
      el.querySelectorAll("input, select").forEach((i) => { if (i.id !== "sf-acc" || i.type === "number") i.disabled = preset.value !== "custom"; });
    });
  }
  function syncExpiry() {
    const select = $("[data-sf-expiry]");
    const box = $("[data-sf-expiry-date]");
    if (select && box) box.hidden = select.value !== "custom";
  }
  function init() { syncVariant(); syncVersions(); syncPreset(); syncExpiry(); }

  document.addEventListener("change", (e) => {
    if (e.target.matches("[data-sf-variant]")) syncVariant();
    if (e.target.matches("[data-sf-environment]")) syncVersions();
    if (e.target.matches("[data-sf-preset]")) syncPreset();
    if (e.target.matches("[data-sf-expiry]")) syncExpiry();
    if (e.target.matches("[data-sf-local-to]")) {
      const out = document.getElementById(e.target.dataset.sfLocalTo);
      const d = new Date(e.target.value);
      if (out) out.value = isNaN(d) ? "" : d.toISOString();
    }
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-sf-env-add]")) {
      const tpl = $("#sf-env-row-template");
      $("#sf-env-vars").appendChild(tpl.content.cloneNode(true));
      const rows = document.querySelectorAll("#sf-env-vars [data-sf-env-row]");
      rows[rows.length - 1].querySelector("input").focus();
    }
    const remove = e.target.closest("[data-sf-env-remove]");
    if (remove) {
      const row = remove.closest("[data-sf-env-row]");
      if (document.querySelectorAll("#sf-env-vars [data-sf-env-row]").length > 1) row.remove();
      else row.querySelectorAll("input").forEach((i) => { i.value = ""; });
    }
    const validate = e.target.closest("[data-sf-validate]");
    if (validate) runValidation(validate);
  });
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);

  /* -- Validate ---------------------------------------------------------------------------------- */
  function setVerdict(kind, head, detail) {
    const box = $("#sf-verdict");
    box.className = "alert d-flex gap-2 align-items-start " + ({ running: "alert-secondary", ok: "alert-success", failed: "alert-danger" })[kind];
    box.dataset.verdict = kind;
    const icon = kind === "running" ? '<span class="spinner-border spinner-border-sm mt-1" aria-hidden="true"></span>'
      : `<i class="bi ${kind === "ok" ? "bi-check-circle-fill" : "bi-x-octagon-fill"} mt-1" aria-hidden="true"></i>`;
    box.innerHTML = icon + '<div><strong data-sf-verdict-text></strong><div class="small" data-sf-verdict-detail></div></div>';
    box.querySelector("[data-sf-verdict-text]").textContent = head;
    const more = box.querySelector("[data-sf-verdict-detail]");
    more.textContent = detail ? detail.charAt(0).toUpperCase() + detail.slice(1) : "";
    more.hidden = !detail;
  }
  function showStep(name, status) {
    const s = strings();
    const list = $("#sf-steps");
    let item = list.querySelector(`[data-step="${CSS.escape(name)}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.step = name;
      list.appendChild(item);
    }
    item.dataset.status = status;
    const ok = /^(ok|done|passed|success|succeeded|finished)$/i.test(status);
    const bad = /^(fail|failed|error)$/i.test(status);
    const icon = ok ? "bi-check-circle text-success" : bad ? "bi-x-circle text-danger" : "bi-hourglass-split text-warning";
    item.innerHTML = `<i class="bi ${icon}" aria-hidden="true"></i> <span></span> <span class="text-body-secondary"></span>`;
    item.children[1].textContent = name;
    item.children[2].textContent = "· " + (ok ? s.stepOk : bad ? s.stepFailed : status || s.stepRunning);
  }
  function appendLog(line) {
    const log = $("#sf-log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += line.endsWith("\n") ? line : line + "\n";
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  function showFieldErrors(fields) {
    const entries = Object.entries(fields || {});
    for (const [name, message] of entries) appendLog(`${name}: ${message}`);
  }
  function handle(event, data, state) {
    let payload = {};
    try { payload = JSON.parse(data || "{}"); } catch (_) { payload = { line: data }; }
    const s = strings();
    if (event === "log") appendLog(String(payload.line ?? data));
    else if (event === "step") showStep(String(payload.step || ""), String(payload.status || ""));
    else if (event === "fields") showFieldErrors(payload);
    else if (event === "verdict") {
      state.done = true;
      if (payload.log) appendLog(String(payload.log));
      if (payload.ok === true) setVerdict("ok", s.ok, payload.message);
      else {
        const head = payload.step ? s.failedAt.replace("%(step)s", payload.step) : s.failed;
        setVerdict("failed", head, payload.message);
        if (payload.step) showStep(String(payload.step), "failed");
      }
    }
  }
  async function runValidation(button) {
    const form = $("#service-form");
    const modalEl = $("#sf-validate-modal");
    const s = strings();
    $("#sf-log").textContent = "";
    $("#sf-steps").innerHTML = "";
    setVerdict("running", s.running);
    bootstrap.Modal.getOrCreateInstance(modalEl).show();
    button.disabled = true;
    const state = { done: false };
    try {
      const token = document.querySelector("meta[name=csrf-token]").content;
      const resp = await fetch(button.dataset.sfValidate, {
        method: "POST", body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRF-Token": token, Accept: "text/event-stream" }, credentials: "same-origin",
      });
      if (!resp.ok || !resp.body) throw new Error(String(resp.status));
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length || event !== "message") handle(event, data.join("\n"), state);
        }
      }
      if (!state.done) setVerdict("failed", s.noVerdict);
    } catch (_) {
      if (!state.done) setVerdict("failed", s.networkError);
    } finally {
      button.disabled = false;
    }
  }
})();
