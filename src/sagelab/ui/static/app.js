// sagelab ui: what changes while a page is open (a running execution, a step's log) and the forms, sent to /api.
"use strict";

function notice(message, error) {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.className = error ? "error" : "ok";
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function formatSeconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return value.toFixed(1) + " s";
  if (value < 3600) return Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
  return (value / 3600).toFixed(1) + " h";
}

function typed(text) {
  return text !== "" && !isNaN(Number(text)) ? Number(text) : text;
}

// The body each kind of form sends.
const BODIES = {
  start: (form) => {
    const parameters = {};
    for (const input of form.querySelectorAll("input[name^='param:']")) parameters[input.name.slice(6)] = typed(input.value);
    return { pipeline: form.dataset.pipeline, parameters };
  },
  from: (form) => ({ pipeline: form.dataset.pipeline, from_step: form.dataset.step, reference: form.dataset.reference }),
  status: (form, submitter) => ({ status: submitter.value, reason: form.elements.reason.value || null }),
  deploy: (form) => ({ model: form.elements.model.value, name: form.elements.name.value }),
  invoke: (form) => ({ body: form.elements.body.value, content_type: form.elements.content_type.value }),
};

async function send(form, submitter) {
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const kind = form.dataset.kind;
  const options = { method: form.dataset.method, headers: { "Content-Type": "application/json" } };
  if (BODIES[kind]) options.body = JSON.stringify(BODIES[kind](form, submitter));
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    const response = await fetch(form.dataset.api, options);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = Array.isArray(answer.detail) ? answer.detail.map((d) => d.msg).join("; ") : answer.detail;
      notice(detail || response.statusText, true);
      return;
    }
    if (answer.execution) {
      window.location.href = "/executions/" + answer.execution;
    } else if (kind === "invoke") {
      form.querySelector("output").innerHTML =
        '<span class="status-code">' + answer.status + " " + escapeHtml(answer.content_type) + "</span><pre>" + escapeHtml(answer.body) + "</pre>";
    } else if (kind === "status" || kind === "deploy" || form.dataset.method === "DELETE") {
      notice(answer.message || "done", false);
      window.setTimeout(() => window.location.reload(), kind === "status" ? 0 : 300);
    } else {
      notice(answer.message || "done", false);
    }
  } catch (error) {
    notice("the UI's server did not answer: " + error, true);
  } finally {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
  }
}

function forms() {
  for (const form of document.querySelectorAll("form.action")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(form, event.submitter);
    });
  }
}

// An execution's page: the graph, and the steps' statuses as they change.
async function drawGraph(graph) {
  const response = await fetch(graph.dataset.src);
  if (!response.ok) return;
  graph.innerHTML = await response.text();
  for (const node of graph.querySelectorAll("g[data-step]")) {
    const href = "/executions/" + graph.dataset.execution + "/steps/" + encodeURIComponent(node.dataset.step);
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "link");
    node.setAttribute("aria-label", "step " + node.dataset.step);
    node.addEventListener("click", () => (window.location.href = href));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter") window.location.href = href;
    });
  }
}

function badge(element, status) {
  element.textContent = status;
  element.className = "status status-" + status;
}

function follow(graph) {
  drawGraph(graph);
  if (graph.dataset.finished === "true") return;
  const source = new EventSource(graph.dataset.events);
  let shown = "";
  source.addEventListener("execution", (event) => {
    const execution = JSON.parse(event.data);
    badge(document.getElementById("execution-status"), execution.status);
    document.getElementById("execution-duration").textContent = formatSeconds(execution.duration);
    for (const step of execution.step_list) {
      const row = document.querySelector('#steps tr[data-step="' + CSS.escape(step.name) + '"]');
      if (!row) continue;
      badge(row.querySelector(".status"), step.status);
      row.querySelector(".duration").textContent = formatSeconds(step.duration);
    }
    const statuses = JSON.stringify(execution.steps);
    if (statuses !== shown) {
      shown = statuses;
      drawGraph(graph);
    }
    document.getElementById("stop-form")?.toggleAttribute("hidden", execution.finished);
    document.getElementById("retry-form")?.toggleAttribute("hidden", !["Failed", "Stopped"].includes(execution.status));
  });
  source.addEventListener("end", () => {
    source.close();
    window.location.reload(); // it ended while shown: its outputs are known now
  });
}

// A step's page: its log as it grows.
function streamLog(log) {
  const source = new EventSource(log.dataset.stream);
  source.addEventListener("log", (event) => {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += JSON.parse(event.data);
    if (atBottom) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("missing", (event) => {
    log.textContent = JSON.parse(event.data);
    source.close();
  });
  source.addEventListener("end", () => {
    source.close();
    log.dataset.ended = "true";
    if (log.dataset.reload === "true") window.location.reload(); // the step ended while shown: its outputs and metrics are known now
  });
}

// Outputs: a folder's objects, and a small object's first rows.
async function preview(button) {
  const box = document.getElementById(button.getAttribute("aria-controls"));
  const uri = button.dataset.uri;
  const listed = await fetch("/api/objects?uri=" + encodeURIComponent(uri)).then((r) => (r.ok ? r.json() : []));
  if (listed.length && !(listed.length === 1 && listed[0] === uri)) {
    box.innerHTML = "<ul>" + listed.map((object, i) => {
      const id = box.id + "-" + i;
      return '<li><span class="mono">' + escapeHtml(object.slice(uri.length).replace(/^\//, "")) + "</span> " +
        '<button type="button" class="link preview" data-uri="' + escapeHtml(object) + '" aria-controls="' + id + '">Preview</button> ' +
        '<a href="/api/objects/download?uri=' + encodeURIComponent(object) + '">Download</a><div class="preview-box" id="' + id + '" aria-live="polite"></div></li>';
    }).join("") + "</ul>";
    for (const inner of box.querySelectorAll("button.preview")) inner.addEventListener("click", () => preview(inner));
    return;
  }
  const response = await fetch("/api/objects/preview?uri=" + encodeURIComponent(uri));
  const shown = await response.json();
  if (!response.ok) {
    box.textContent = shown.detail;
    return;
  }
  let html = '<p class="meta">' + shown.kind + ", " + shown.size.toLocaleString() + " bytes" + (shown.truncated ? ", the first rows" : "") +
    ' · <a href="/api/objects/download?uri=' + encodeURIComponent(uri) + '">Download</a></p>';
  if (shown.rows.length) {
    html += '<div class="scroll"><table class="preview"><tbody>' +
      shown.rows.map((row) => "<tr>" + row.map((cell) => "<td>" + escapeHtml(cell ?? "") + "</td>").join("") + "</tr>").join("") + "</tbody></table></div>";
  } else if (shown.text) {
    html += "<pre>" + escapeHtml(shown.text) + "</pre>";
  }
  box.innerHTML = html;
}

document.addEventListener("DOMContentLoaded", () => {
  forms();
  const graph = document.getElementById("graph");
  if (graph) follow(graph);
  const log = document.getElementById("log");
  if (log) streamLog(log);
  for (const button of document.querySelectorAll("button.preview")) button.addEventListener("click", () => preview(button));
});
