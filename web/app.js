// The web page: a panel of the caller's jobs (followed live), a form to start an export and one
// to upload a file. Everything goes through ./ferry.js; this file only draws. No framework.

import {Ferry, FerryError, EXPORT_FORMATS, IMPORT_MODES, FINAL_STATES} from "./ferry.js";

const TOKEN_KEY = "ferry.token";
const GENERATE_KINDS = ["uuid", "int", "float", "bool", "name", "email", "company", "city", "country",
  "phone", "date", "timestamp", "enum", "text", "json"];
const NUMBER_PARAMS = {int: "1", bigint: "1", numeric: "any"}; // template param type -> input step
const JOBS_SHOWN = 50;
const REJECTS_SHOWN = 10;
const IN_PARTS_FROM = 64 * 1024 * 1024; // files this large are sent resumably by default

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();

const ferry = new Ferry({token: sessionStorage.getItem(TOKEN_KEY), onUnauthorized: askForToken});

// ---- token ------------------------------------------------------------------------------------

let tokenAsked = null; // one dialog for every request that got a 401 at the same time

/** Shows the sign-in form; resolves with the token entered (kept for the tab) or null. */
function askForToken(problem) {
  if (!tokenAsked) {
    tokenAsked = new Promise((resolve) => {
      const dialog = $("token-dialog");
      const input = $("token-input");
      $("token-reason").textContent = ferry.token
        ? "That token was refused. Enter another one."
        : "This Ferry needs a token (an API key or a JWT).";
      input.value = "";
      const finish = (token) => {
        dialog.close();
        tokenAsked = null;
        if (token) sessionStorage.setItem(TOKEN_KEY, token);
        showSignOut();
        resolve(token);
      };
      $("token-form").onsubmit = (event) => {
        event.preventDefault();
        if (input.value.trim()) finish(input.value.trim());
      };
      $("token-cancel").onclick = () => finish(null);
      dialog.oncancel = (event) => { event.preventDefault(); finish(null); };
      dialog.showModal();
      input.focus();
    });
  }
  void problem;
  return tokenAsked;
}

function showSignOut() {
  $("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  ferry.token = null;
  showSignOut();
  panel.clear();
  $("jobs-message").textContent = "Signed out.";
  notify("Signed out: the token is forgotten.");
});

// ---- notices ----------------------------------------------------------------------------------

/** A dismissible notice at the top of the page. */
function notify(text, {kind = "info"} = {}) {
  const notice = document.createElement("div");
  notice.className = `notice ${kind}`;
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  const message = document.createElement("span");
  message.textContent = text;
  const close = button("Dismiss", () => notice.remove(), "quiet small");
  close.setAttribute("aria-label", `Dismiss: ${text}`);
  notice.append(message, close);
  $("notices").prepend(notice);
  return notice;
}

function describe(error) {
  if (error instanceof FerryError) {
    const fields = (error.problem?.errors || []).map((e) => `${e.field}: ${e.message}`);
    return [error.message, ...fields.filter((f) => !error.message.includes(f))].join(" — ");
  }
  return error?.message || String(error);
}

// ---- small builders ---------------------------------------------------------------------------

function element(tag, {text, className, attrs = {}} = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function button(text, onClick, className = "") {
  const node = element("button", {text, className, attrs: {type: "button"}});
  node.addEventListener("click", onClick);
  return node;
}

function options(select, values, {empty} = {}) {
  select.replaceChildren();
  if (empty !== undefined) select.append(new Option(empty, ""));
  for (const value of values) {
    const [label, val] = Array.isArray(value) ? value : [value, value];
    select.append(new Option(label, val));
  }
}

/**
 * A choice of names in `slot`: a select when the server listed them, a text input otherwise (the
 * discovery endpoints may be missing, or list nothing). Returns the control (its id is `id`).
 */
function choice(slot, id, names, {placeholder = "", value = ""} = {}) {
  let control;
  if (names.length) {
    control = element("select", {attrs: {id}});
    options(control, names);
    if (value && names.includes(value)) control.value = value;
  } else {
    control = element("input", {attrs: {id, type: "text", autocomplete: "off", placeholder}});
    control.value = value;
  }
  slot.replaceChildren(control);
  return control;
}

/** Asks a discovery endpoint; an error (404 until it exists, or none allowed) gives nothing. */
async function discover(ask) {
  try {
    return await ask();
  } catch (error) {
    if (error instanceof FerryError && error.status !== 401) return [];
    throw error;
  }
}

function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

function when(timestamp) {
  if (!timestamp) return "—";
  const at = new Date(timestamp);
  const today = new Date().toDateString() === at.toDateString();
  return today ? at.toLocaleTimeString() : at.toLocaleString();
}

// ---- the panel --------------------------------------------------------------------------------

/** The list of jobs: one `<li>` per job, drawn again on each change; one stream per live job. */
class Panel {
  #items = new Map();     // id -> {job, node}
  #followed = new Map();  // id -> AbortController of the panel's own stream
  #elsewhere = new Set(); // ids of jobs a form follows (the panel opens no second stream)

  clear() {
    for (const controller of this.#followed.values()) controller.abort();
    this.#followed.clear();
    this.#items.clear();
    $("jobs").replaceChildren();
  }

  /** Lists the caller's jobs again; false when they cannot be listed. */
  async load() {
    $("jobs-message").textContent = "Loading…";
    try {
      const jobs = await ferry.jobs({limit: JOBS_SHOWN});
      this.clear();
      for (const job of jobs.reverse()) this.show(job, {follow: true});
      $("jobs-message").textContent = jobs.length ? "" : "No jobs yet: start an export or upload a file.";
      return true;
    } catch (error) {
      const signIn = error instanceof FerryError && error.status === 401;
      $("jobs-message").textContent = signIn
        ? "Sign in to see your jobs: press Refresh and enter your token."
        : `The jobs cannot be listed: ${describe(error)}`;
      return false;
    }
  }

  /** Adds or redraws `job`; with `follow`, opens a stream for it while it is not final. */
  show(job, {follow = false} = {}) {
    let item = this.#items.get(job.id);
    if (!item) {
      const node = $("job-template").content.firstElementChild.cloneNode(true);
      node.dataset.id = job.id;
      item = {job, node};
      this.#items.set(job.id, item);
      $("jobs").prepend(node);
      $("jobs-message").textContent = "";
    }
    item.job = job;
    if (FINAL_STATES.includes(job.state)) this.#elsewhere.delete(job.id);
    draw(item.node, job);
    if (follow) this.follow(job);
  }

  /** Follows a running or queued job until it is done (one stream per job). */
  follow(job) {
    if (FINAL_STATES.includes(job.state) || job.state === "awaiting_upload") return;
    if (this.#followed.has(job.id) || this.#elsewhere.has(job.id)) return;
    const controller = new AbortController();
    this.#followed.set(job.id, controller);
    ferry.follow(job.kind, job.id, {signal: controller.signal, onProgress: (j) => this.show(j)})
      .catch((error) => {
        if (!controller.signal.aborted) $("jobs-message").textContent = describe(error);
      })
      .finally(() => {
        if (this.#followed.get(job.id) === controller) this.#followed.delete(job.id);
      });
  }

  /** Someone else (the export or upload form) follows this job. */
  followedElsewhere(job) {
    if (!FINAL_STATES.includes(job.state)) this.#elsewhere.add(job.id);
    this.#followed.get(job.id)?.abort();
    this.#followed.delete(job.id);
  }

  /** A form stopped following a job (it ended, or following failed): the panel may again. */
  release(job) {
    if (!job) return;
    this.#elsewhere.delete(job.id);
    const item = this.#items.get(job.id);
    if (item) this.follow(item.job);
  }

  remove(id) {
    this.#followed.get(id)?.abort();
    this.#followed.delete(id);
    this.#items.get(id)?.node.remove();
    this.#items.delete(id);
  }
}

const panel = new Panel();

function draw(node, job) {
  node.dataset.state = job.state;
  node.querySelector(".job-name").textContent = job.name;
  node.querySelector(".kind").textContent = job.kind;
  const state = node.querySelector(".state");
  state.textContent = job.state.replace("_", " ");
  state.dataset.state = job.state;
  drawProgress(node, job);
  drawFacts(node.querySelector(".job-facts"), job);
  drawEntries(node.querySelector(".job-entries"), job);
  const error = node.querySelector(".job-error");
  error.hidden = !job.error;
  error.textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
  drawActions(node, job);
}

function drawProgress(node, job) {
  const bar = node.querySelector(".job-progress");
  const p = job.progress || {};
  const finished = FINAL_STATES.includes(job.state);
  let percent = p.percent;
  if (job.state === "succeeded") percent = 100;
  if (percent === null || percent === undefined) {
    if (finished) bar.value = 0; else bar.removeAttribute("value"); // indeterminate
  } else {
    bar.value = percent;
  }
  const label = `${job.name}: ${percent === null || percent === undefined ? "progress unknown" : `${Math.round(percent)}%`}`;
  bar.setAttribute("aria-label", label);
  const parts = [`${numbers.format(p.rows || 0)} rows`];
  if (percent !== null && percent !== undefined) parts.push(`${percent >= 10 ? Math.round(percent) : percent.toFixed(1)}%`);
  if (job.kind === "import" && (p.rows_inserted || p.rows_rejected)) {
    parts.push(`${numbers.format(p.rows_inserted || 0)} inserted`, `${numbers.format(p.rows_rejected || 0)} rejected`);
  }
  node.querySelector(".job-progress-text").textContent = parts.join(" · ");
}

function drawFacts(list, job) {
  const facts = [];
  const file = job.result?.file;
  if (job.kind === "export") {
    const format = job.spec?.format || file?.format || "—";
    const files = file?.entries?.length ?? job.spec?.files?.length;
    facts.push(["Format", format === "zip" && files ? `zip, ${files} ${files === 1 ? "file" : "files"}` : format]);
    facts.push(["Size", bytes(file ? file.size_bytes : job.progress?.bytes)]);
    facts.push(["Rows", numbers.format(file ? file.rows : job.progress?.rows || 0)]);
  } else {
    facts.push(["Table", job.spec?.target?.table || "—"]);
    facts.push(["Size", bytes(job.progress?.total_bytes)]);
    const r = job.result;
    facts.push(["Rows", r ? `${numbers.format(r.rows_inserted)} in, ${numbers.format(r.rows_rejected)} rejected`
      : numbers.format(job.progress?.rows || 0)]);
    if (r?.created) {
      facts.push(["New table", r.created.columns.map((c) => `${c.name} ${c.type}`).join(", ")]);
    }
  }
  facts.push(["Created", when(job.created_at)]);
  if (job.finished_at) facts.push(["Finished", when(job.finished_at)]);
  list.replaceChildren(...facts.map(([term, value]) => {
    const pair = element("div");
    pair.append(element("dt", {text: term}), element("dd", {text: value}));
    return pair;
  }));
}

/**
 * The files of a zip bundle: when it is done, each entry of `result.file.entries` with its rows
 * and size; before, the files its request asked for.
 */
function drawEntries(list, job) {
  const done = job.result?.file?.entries;
  const asked = job.spec?.files;
  const lines = done
    ? done.map((e) => [e.name, `${numbers.format(e.rows)} rows · ${bytes(e.bytes)}`])
    : (asked || []).map((f) => [entryFile(f.name, f.format), "waiting"]);
  list.hidden = lines.length === 0;
  list.setAttribute("aria-label", `Files in ${job.name}`);
  list.replaceChildren(...lines.map(([file, facts]) => {
    const item = element("li");
    item.append(element("span", {text: file, className: "entry-file"}), element("span", {text: facts, className: "entry-facts"}));
    return item;
  }));
}

/** A bundle file's name in the zip: its name and its format's extension. */
function entryFile(name, format) {
  return `${name}.${format || "csv"}`;
}

function drawActions(node, job) {
  const actions = node.querySelector(".job-actions");
  const named = (verb) => `${verb} ${job.kind} “${job.name}”`;
  const act = (text, run, className = "") => {
    const b = button(text, async () => {
      b.disabled = true;
      try { await run(); } catch (error) { notify(describe(error), {kind: "error"}); } finally { b.disabled = false; }
    }, className);
    b.setAttribute("aria-label", named(text));
    return b;
  };
  const all = [];
  if (job.kind === "export" && job.state === "succeeded") {
    all.push(act("Download", async () => {
      const fresh = await ferry.job("export", job.id);
      ferry.download(fresh.result.download_url, fresh.result.file?.filename);
    }, "primary small"));
  }
  if (job.kind === "import" && (job.result?.rows_rejected || job.progress?.rows_rejected)) {
    all.push(act("Rejects", () => toggleRejects(node, job), "small"));
  }
  if (!FINAL_STATES.includes(job.state)) {
    all.push(act("Cancel", async () => panel.show(await ferry.cancel(job.kind, job.id)), "small"));
  }
  if (job.state === "failed" || job.state === "cancelled") {
    all.push(act("Retry", async () => {
      const again = await ferry.retry(job.kind, job.id);
      panel.show(again, {follow: true});
    }, "small"));
  }
  all.push(act("Delete", async () => {
    await ferry.delete(job.kind, job.id);
    panel.remove(job.id);
  }, "small danger"));
  actions.replaceChildren(...all);
}

async function toggleRejects(node, job) {
  const box = node.querySelector(".job-rejects");
  if (!box.hidden) { box.hidden = true; return; }
  await showRejects(box, job);
  box.hidden = false;
}

/** The first rejected rows of an import (line, errors) and a button for the whole CSV. */
async function showRejects(box, job) {
  const {rows, more} = await ferry.rejects(job.id, {limit: REJECTS_SHOWN});
  if (!rows.length) {
    box.replaceChildren(element("p", {text: "No rejected rows.", className: "meta"}));
    return;
  }
  const table = element("table", {className: "rejects"});
  const caption = element("caption", {text: more ? `The first ${rows.length} rejected rows` : "Rejected rows"});
  const head = element("thead");
  const headRow = element("tr");
  headRow.append(element("th", {text: "Line", attrs: {scope: "col"}}), element("th", {text: "Errors", attrs: {scope: "col"}}));
  head.append(headRow);
  const body = element("tbody");
  for (const row of rows) {
    const tr = element("tr");
    tr.append(element("td", {text: row.line ?? "—"}), element("td", {text: row.errors || row.raw}));
    body.append(tr);
  }
  table.append(caption, head, body);
  const save = button("Download all rejected rows (CSV)", async () => {
    try {
      const blob = await ferry.rejectsFile(job.id);
      const url = URL.createObjectURL(blob);
      ferry.download(url, `rejects-${job.id}.csv`);
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      notify(describe(error), {kind: "error"});
    }
  }, "small");
  box.replaceChildren(table, save);
}

$("jobs-refresh").addEventListener("click", () => refresh());

// ---- start an export --------------------------------------------------------------------------

const exportForm = $("export-form");
let templates = [];

function sourceKind() {
  return exportForm.querySelector("input[name=source]:checked").value;
}

function showSource() {
  const kind = sourceKind();
  for (const part of exportForm.querySelectorAll("[data-source]")) part.hidden = part.dataset.source !== kind;
}

exportForm.querySelectorAll("input[name=source]").forEach((radio) => radio.addEventListener("change", showSource));

function addColumn(name = "", kind = "text", values = "") {
  const list = $("gen-columns");
  const n = list.children.length + 1;
  const item = element("li", {className: "column"});
  const nameId = `gen-col-name-${crypto.randomUUID()}`;
  const kindId = `gen-col-kind-${crypto.randomUUID()}`;
  const valuesId = `gen-col-values-${crypto.randomUUID()}`;
  const nameInput = element("input", {className: "col-name", attrs: {id: nameId, type: "text", autocomplete: "off"}});
  nameInput.value = name || `column_${n}`;
  const kindSelect = element("select", {className: "col-kind", attrs: {id: kindId}});
  options(kindSelect, GENERATE_KINDS);
  kindSelect.value = kind;
  const valuesField = element("div", {className: "col-values"});
  const valuesInput = element("input", {attrs: {id: valuesId, type: "text", placeholder: "free, pro, team", autocomplete: "off"}});
  valuesInput.value = values;
  valuesField.append(element("label", {text: "Values (comma-separated)", attrs: {for: valuesId}}), valuesInput);
  const syncValues = () => { valuesField.hidden = kindSelect.value !== "enum"; };
  kindSelect.addEventListener("change", syncValues);
  syncValues();
  const remove = button("Remove", () => { item.remove(); $("gen-add").focus(); }, "quiet small");
  const label = (text, id) => element("label", {text, attrs: {for: id}});
  const nameCell = element("div");
  nameCell.append(label("Column name", nameId), nameInput);
  const kindCell = element("div");
  kindCell.append(label("Kind", kindId), kindSelect);
  item.append(nameCell, kindCell, remove, valuesField);
  nameInput.addEventListener("input", () => remove.setAttribute("aria-label", `Remove column ${nameInput.value}`));
  remove.setAttribute("aria-label", `Remove column ${nameInput.value}`);
  list.append(item);
  return item;
}

$("gen-add").addEventListener("click", () => addColumn().querySelector("input").focus());

function drawTemplateParams() {
  const template = templates.find((t) => t.name === $("template").value);
  const box = $("template-params");
  box.replaceChildren();
  for (const param of template?.params || []) {
    const id = `param-${param.name}`;
    const input = element("input", {attrs: {id, name: param.name, "data-type": param.type}});
    if (param.type in NUMBER_PARAMS) { input.type = "number"; input.step = NUMBER_PARAMS[param.type]; }
    else if (param.type === "bool") input.type = "checkbox";
    else if (param.type === "date") input.type = "date";
    else if (param.type === "timestamptz") input.type = "datetime-local";
    else input.type = "text";
    const label = element("label", {text: `${param.name} (${param.type})`, attrs: {for: id}});
    const field = element("div", {className: input.type === "checkbox" ? "check" : ""});
    field.append(...(input.type === "checkbox" ? [input, label] : [label, input]));
    box.append(field);
  }
}

$("template").addEventListener("change", drawTemplateParams);

function templateParams() {
  const params = {};
  for (const input of $("template-params").querySelectorAll("input")) {
    const type = input.dataset.type;
    if (type === "bool") params[input.name] = input.checked;
    else if (input.value === "") continue;
    else if (type === "int" || type === "bigint") params[input.name] = Number.parseInt(input.value, 10);
    else if (type === "numeric") params[input.name] = input.value;
    else if (type === "timestamptz") params[input.name] = new Date(input.value).toISOString();
    else params[input.name] = input.value;
  }
  return params;
}

function generateColumns() {
  return [...$("gen-columns").children].map((item) => {
    const column = {name: item.querySelector(".col-name").value.trim(), kind: item.querySelector(".col-kind").value};
    if (column.kind === "enum") {
      column.values = item.querySelector(".col-values input").value.split(",").map((v) => v.trim()).filter(Boolean);
    }
    return column;
  });
}

/** The source the form describes. */
function exportSource() {
  const kind = sourceKind();
  if (kind === "template") return {type: "template", template: $("template").value, params: templateParams()};
  if (kind === "sql") return {type: "sql", connection: $("sql-connection").value.trim(), query: $("sql-query").value};
  const source = {type: "generate", rows: Number.parseInt($("gen-rows").value, 10), columns: generateColumns()};
  if ($("gen-seed").value !== "") source.seed = Number.parseInt($("gen-seed").value, 10);
  return source;
}

/** The export spec the form describes: its one source, or the zip bundle put together. */
function exportSpec() {
  const spec = bundle.length
    ? {format: "zip", files: bundle.map(({name, source, format}) => ({name, source, format}))}
    : {source: exportSource(), format: $("export-format").value};
  const name = $("export-name").value.trim();
  if (name) spec.name = name;
  return spec;
}

// ---- a zip bundle -----------------------------------------------------------------------------

/** The files of the bundle being put together: `{name, source, format}` each. */
let bundle = [];

/** Says in a few words where a bundle file comes from. */
function sourceSummary(source) {
  if (source.type === "template") return `template ${source.template}`;
  if (source.type === "sql") {
    const query = source.query.replace(/\s+/g, " ").trim();
    return `SQL on ${source.connection}: ${query.length > 48 ? `${query.slice(0, 47)}…` : query}`;
  }
  return `generated data, ${numbers.format(source.rows || 0)} rows`;
}

/** Adds the source and format the form shows as a file of the bundle. */
function addToBundle() {
  const error = $("export-error");
  error.hidden = true;
  const input = $("bundle-entry-name");
  const name = input.value.trim();
  const format = $("export-format").value;
  const refuse = (text) => {
    error.textContent = text;
    error.hidden = false;
    input.focus();
  };
  if (!name) return refuse("Give the file a name in the zip first (e.g. users).");
  const file = entryFile(name, format);
  if (bundle.some((e) => entryFile(e.name, e.format).toLowerCase() === file.toLowerCase())) {
    return refuse(`${file} is in the zip already: give this file another name.`);
  }
  bundle.push({name, source: exportSource(), format});
  input.value = "";
  drawBundle();
  $("bundle-status").textContent = `Added ${file}: ${bundleCount()} in the zip.`;
  input.focus();
}

function bundleCount() {
  return `${bundle.length} ${bundle.length === 1 ? "file" : "files"}`;
}

/** Draws the bundle's files (each with a Remove button) and names the submit button after it. */
function drawBundle() {
  $("bundle-entries").replaceChildren(...bundle.map((entry, i) => {
    const file = entryFile(entry.name, entry.format);
    const item = element("li", {className: "bundle-entry"});
    const remove = button("Remove", () => {
      bundle.splice(i, 1);
      drawBundle();
      $("bundle-status").textContent = `Removed ${file}: ${bundleCount()} in the zip.`;
      $("bundle-entry-name").focus();
    }, "quiet small");
    remove.setAttribute("aria-label", `Remove ${file} from the zip`);
    item.append(element("span", {text: file, className: "entry-file"}),
      element("span", {text: sourceSummary(entry.source), className: "entry-source"}), remove);
    return item;
  }));
  $("export-submit").textContent = bundle.length ? `Start the zip export (${bundleCount()})` : "Start the export";
}

$("bundle-add").addEventListener("click", addToBundle);
$("bundle-entry-name").addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); addToBundle(); }
});

exportForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("export-error");
  error.hidden = true;
  const submit = exportForm.querySelector("button[type=submit]");
  submit.disabled = true;
  let followed = null;
  const sent = [...bundle];
  try {
    const job = await ferry.exportFile(exportSpec(), {
      onProgress: (j) => {
        if (!followed) { followed = j; submit.disabled = false; panel.followedElsewhere(j); }
        panel.show(j);
      },
    });
    panel.show(job);
    notify(`Downloaded ${job.result.file.filename} — ${numbers.format(job.result.file.rows)} rows`);
    if (sent.length) {
      bundle = bundle.filter((entry) => !sent.includes(entry)); // files added meanwhile stay
      drawBundle();
    }
  } catch (failure) {
    if (failure.job) {
      panel.show(failure.job);
      notify(`The export “${failure.job.name}” ${failure.job.state}: ${describe(failure)}`, {kind: "error"});
    } else {
      error.textContent = describe(failure);
      error.hidden = false;
    }
  } finally {
    submit.disabled = false;
    panel.release(followed);
  }
});

// ---- upload a file ----------------------------------------------------------------------------

const uploadForm = $("upload-form");
let chosenFile = null;
let connections = [];

function choose(file) {
  chosenFile = file || null;
  $("upload-chosen").textContent = file ? `${file.name} (${bytes(file.size)})` : "";
  if (file) $("upload-resumable").checked = file.size >= IN_PARTS_FROM;
}

$("upload-file").addEventListener("change", (event) => choose(event.target.files[0]));
const drop = $("drop-zone");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
});

$("upload-mode").addEventListener("change", () => { $("upload-key-field").hidden = $("upload-mode").value !== "upsert"; });

/** Offers the chosen connection's tables as suggestions; any name may still be typed. */
async function drawTables() {
  const connection = $("upload-connection").value.trim();
  const tables = connection ? await discover(() => ferry.tables(connection)) : [];
  const names = tables.map((t) => (t.schema && t.schema !== "public" ? `${t.schema}.${t.name}` : t.name));
  options($("upload-tables"), names);
}

function importSpec() {
  const connection = $("upload-connection").value.trim();
  const spec = {target: {table: $("upload-table").value.trim()}, mode: $("upload-mode").value};
  if (connection) spec.target.connection = connection;
  if ($("upload-create").checked) spec.target.create = true;
  if (spec.mode === "upsert") spec.key = $("upload-key").value.split(",").map((k) => k.trim()).filter(Boolean);
  return spec;
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("upload-error");
  error.hidden = true;
  if (!chosenFile) {
    error.textContent = "Choose a file first (drop it on the zone, or use the picker).";
    error.hidden = false;
    return;
  }
  const submit = uploadForm.querySelector("button[type=submit]");
  submit.disabled = true;
  const status = $("upload-status");
  const bar = $("upload-progress");
  status.hidden = false;
  $("upload-result").replaceChildren();
  $("upload-step").textContent = `Uploading ${chosenFile.name}…`;
  bar.max = chosenFile.size || 1;
  bar.value = 0;
  $("upload-bytes").textContent = `0 B of ${bytes(chosenFile.size)}`;
  let followed = null;
  try {
    const send = $("upload-resumable").checked ? ferry.importFileInParts : ferry.importFile;
    const job = await send.call(ferry, chosenFile, importSpec(), {
      onUploadProgress: ({loaded, total}) => {
        bar.max = total || 1;
        bar.value = loaded;
        $("upload-bytes").textContent = `${bytes(loaded)} of ${bytes(total)} sent`;
      },
      onProgress: (j, step) => {
        followed = j;
        panel.followedElsewhere(j);
        panel.show(j);
        if (step === "started" || j.state === "running" || j.state === "queued") {
          $("upload-step").textContent = `Importing ${chosenFile.name} into ${j.spec?.target?.table}…`;
          const p = j.progress || {};
          if (p.percent === null || p.percent === undefined) bar.removeAttribute("value");
          else { bar.max = 100; bar.value = p.percent; }
          $("upload-bytes").textContent = `${numbers.format(p.rows || 0)} rows read`;
        }
      },
    });
    panel.show(job);
    await showImportResult(job);
  } catch (failure) {
    if (failure.job) {
      panel.show(failure.job);
      $("upload-step").textContent = `The import ${failure.job.state}: ${describe(failure)}`;
    } else {
      status.hidden = true;
      error.textContent = describe(failure);
      error.hidden = false;
    }
  } finally {
    submit.disabled = false;
    panel.release(followed);
  }
});

async function showImportResult(job) {
  const r = job.result;
  $("upload-step").textContent = `Imported into ${r.table}`;
  const bar = $("upload-progress");
  bar.max = 100;
  bar.value = 100;
  $("upload-bytes").textContent = "";
  const summary = element("p", {className: "result-line"});
  summary.append(
    element("strong", {text: numbers.format(r.rows_inserted), className: "inserted"}), " rows inserted, ",
    element("strong", {text: numbers.format(r.rows_rejected), className: "rejected"}), " rejected",
  );
  const box = element("div", {className: "upload-rejects"});
  $("upload-result").replaceChildren(summary, box);
  if (r.rows_rejected) await showRejects(box, job);
}

// ---- start ------------------------------------------------------------------------------------

async function loadChoices() {
  const [found, allConnections] = await Promise.all([discover(() => ferry.templates()), discover(() => ferry.connections())]);
  templates = found;
  connections = allConnections;
  options($("template"), templates.map((t) => t.name));
  $("template-empty").hidden = templates.length > 0;
  drawTemplateParams();
  const sqlNames = connections.filter((c) => c.allow_sql).map((c) => c.name);
  choice($("sql-connection-slot"), "sql-connection", sqlNames, {placeholder: "local", value: "local"});
  const names = connections.map((c) => c.name);
  const upload = choice($("upload-connection-slot"), "upload-connection", names, {placeholder: "local (or leave empty)", value: names.includes("local") ? "local" : ""});
  upload.addEventListener("change", drawTables);
  // A table made since the page loaded shows up the next time the field is used.
  $("upload-table").addEventListener("focus", drawTables);
  await drawTables();
}

function start() {
  options($("export-format"), EXPORT_FORMATS);
  options($("upload-mode"), IMPORT_MODES);
  addColumn("id", "uuid");
  addColumn("name", "name");
  addColumn("email", "email");
  showSource();
  showSignOut();
  choice($("sql-connection-slot"), "sql-connection", [], {placeholder: "local", value: "local"});
  choice($("upload-connection-slot"), "upload-connection", [], {placeholder: "local (or leave empty)"});
  refresh();
}

let choicesLoaded = false;

/** The panel first: a 401 there asks for the token once, and the forms' choices follow with it. */
async function refresh() {
  if (!(await panel.load()) || choicesLoaded) return;
  try {
    await loadChoices();
    choicesLoaded = true;
  } catch (error) {
    notify(describe(error), {kind: "error"});
  }
}

start();
