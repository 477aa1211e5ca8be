// ferry.js — the Ferry client as an ES module, for any web page: no dependencies, no build step.
//
//   import {Ferry} from "https://ferry.example.com/ferry.js";
//   const ferry = new Ferry({baseUrl: "https://ferry.example.com", token});
//   await ferry.exportFile(spec, {onProgress});            // creates, follows, downloads
//   await ferry.importFile(file, spec, {onUploadProgress}); // direct upload, start, follow
//
// Every call sends `Authorization: Bearer <token>` when a token is set. A job is followed with
// `fetch` and a stream reader over its Server-Sent Events (never `EventSource`, which cannot send
// that header), resuming with `Last-Event-ID` when the stream drops. An HTTP error rejects with
// a `FerryError` whose `.problem` is the RFC 9457 body; a job that ends badly rejects with a
// `FerryError` whose `.job` is the final job. See docs/web.md.

/** Every export format the server takes; the page's format select is made from this list. */
export const EXPORT_FORMATS = ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet", "xlsx"];

/** Import modes. */
export const IMPORT_MODES = ["append", "replace", "upsert"];

/** States after which a job never changes again (but for `expired`, which follows `succeeded`). */
export const FINAL_STATES = ["succeeded", "failed", "cancelled", "expired"];

/** How many times in a row a dropped event stream is reopened before giving up. */
const MAX_RECONNECTS = 8;

/** An API error (`.problem`, `.status`) or a job that did not succeed (`.job`). */
export class FerryError extends Error {
  constructor(message, {problem = null, job = null} = {}) {
    super(message);
    this.name = "FerryError";
    this.problem = problem;
    this.status = problem ? problem.status : null;
    this.job = job;
  }
}

/** The client of one Ferry server. */
export class Ferry {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] Ferry's address, e.g. "https://ferry.example.com"; "" for the page's own origin.
   * @param {string} [options.token] the bearer token (an API key or a JWT); none with `auth.mode = "none"`.
   * @param {function} [options.onUnauthorized] called with the problem of a `401`; may resolve with a
   *   new token (the request is then sent again with it) or with null (the request fails).
   */
  constructor({baseUrl = "", token = null, onUnauthorized = null} = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token || null;
    this.onUnauthorized = onUnauthorized;
  }

  // ---- exports and imports ------------------------------------------------------------------

  /**
   * Creates an export, follows it to its end and, when it succeeded and `download` is true,
   * downloads its file (through its signed link, which needs no token). Resolves with the final job.
   */
  async exportFile(spec, {onProgress, download = true, signal} = {}) {
    const created = await this.#json("POST", "/v1/exports", {body: spec, signal});
    onProgress?.(created, "created");
    let job = await this.follow("export", created.id, {onProgress, signal});
    if (job.state !== "succeeded") throw jobFailure(job);
    if (download) {
      job = await this.job("export", job.id, {signal}); // a fresh link
      this.download(job.result.download_url, job.result.file?.filename);
    }
    return job;
  }

  /**
   * Imports `file` (a File or Blob) by direct upload: the import is created with `spec`, the file
   * is put to its signed link (Ferry's own `/files/…` on the local store, the bucket on S3), the
   * import is started and followed to its end. Resolves with the final job.
   */
  async importFile(file, spec, {onUploadProgress, onProgress, signal} = {}) {
    const created = await this.#json("POST", "/v1/imports", {body: {...spec, upload: "direct"}, signal});
    onProgress?.(created, "created");
    try {
      await putFile(created.upload, file, {onUploadProgress, signal});
    } catch (error) {
      this.cancel("import", created.id).catch(() => {}); // nothing will ever start it
      throw error;
    }
    const started = await this.#json("POST", `/v1/imports/${created.id}/start`, {signal});
    onProgress?.(started, "started");
    const job = await this.follow("import", created.id, {onProgress, signal});
    if (job.state !== "succeeded") throw jobFailure(job);
    return job;
  }

  /**
   * Imports `file` by a resumable upload in parts (`"upload": "multipart"`): each part goes to
   * its own short-lived link and is tried up to 5 times; the import's id is kept in
   * `localStorage` under the file's name, size and modification time, so calling this again for
   * the same file (after a reload, a dropped connection or an abort) continues from the parts the
   * store holds. Then completes, starts and follows the import. Resolves with the final job.
   */
  async importFileInParts(file, spec, {onUploadProgress, onProgress, signal} = {}) {
    const memo = `ferry-upload ${this.baseUrl} ${file.name} ${file.size} ${file.lastModified}`;
    let id = globalThis.localStorage?.getItem(memo);
    let upload = id ? await this.#json("GET", `/v1/imports/${id}/upload`, {signal}).catch(() => null) : null;
    if (!upload) {
      const created = await this.#json("POST", "/v1/imports",
        {body: {...spec, upload: "multipart", size: file.size}, signal});
      id = created.id;
      onProgress?.(created, "created");
      globalThis.localStorage?.setItem(memo, id);
      upload = await this.#json("GET", `/v1/imports/${id}/upload`, {signal});
    }
    const stored = new Map(upload.uploaded.map((part) => [part.number, part.size]));
    let sent = upload.uploaded.reduce((sum, part) => sum + part.size, 0);
    for (let number = 1; number <= upload.parts; number++) {
      const start = (number - 1) * upload.part_size;
      const end = Math.min(file.size, start + upload.part_size);
      if (stored.get(number) === end - start) continue;
      const progress = ({loaded}) => onUploadProgress?.({loaded: sent + loaded, total: file.size});
      await withTries(5, signal, async () => {
        const link = await this.#json("GET", `/v1/imports/${id}/upload/parts/${number}`, {signal});
        await putFile(link, file.slice(start, end), {onUploadProgress: progress, signal});
      });
      sent += end - start;
    }
    await this.#json("POST", `/v1/imports/${id}/upload/complete`, {signal});
    const started = await this.#json("POST", `/v1/imports/${id}/start`, {signal});
    globalThis.localStorage?.removeItem(memo);
    onProgress?.(started, "started");
    const job = await this.follow("import", id, {onProgress, signal});
    if (job.state !== "succeeded") throw jobFailure(job);
    return job;
  }

  /**
   * Follows a job's events until `done`; `onProgress(job, event)` on each. Resolves with the
   * final job. A stream that drops before `done` is reopened with `Last-Event-ID`.
   */
  async follow(kind, id, {onProgress, signal} = {}) {
    let lastId = null;
    let failures = 0;
    for (;;) {
      const headers = {Accept: "text/event-stream"};
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      let response;
      try {
        response = await this.#fetch("GET", `${collection(kind)}/${id}/events`, {headers, signal});
      } catch (error) {
        if (!isNetworkError(error, signal) || ++failures > MAX_RECONNECTS) throw error;
        await pause(backoff(failures), signal);
        continue;
      }
      if (response.status === 204) return this.job(kind, id, {signal}); // already done
      try {
        for await (const event of readEvents(response.body)) {
          failures = 0;
          if (event.id !== null) lastId = event.id;
          if (!event.data) continue;
          const job = JSON.parse(event.data);
          onProgress?.(job, event.event);
          if (event.event === "done") return job;
        }
      } catch (error) {
        if (!isNetworkError(error, signal)) throw error;
      }
      if (++failures > MAX_RECONNECTS) {
        throw new FerryError(`the event stream of ${kind} ${id} keeps dropping`);
      }
      await pause(backoff(failures), signal);
    }
  }

  /** The caller's exports and/or imports (both when `kind` is left out), newest first. */
  async jobs({kind, state, limit = 20, signal} = {}) {
    const kinds = kind ? [kind] : ["export", "import"];
    const query = new URLSearchParams({limit: String(limit)});
    if (state) query.set("state", state);
    const pages = await Promise.all(
      kinds.map((k) => this.#json("GET", `${collection(k)}?${query}`, {signal})),
    );
    return pages
      .flatMap((page) => page.items)
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.id.localeCompare(a.id)))
      .slice(0, limit);
  }

  /** One job. */
  job(kind, id, {signal} = {}) {
    return this.#json("GET", `${collection(kind)}/${id}`, {signal});
  }

  /** Cancels a job; resolves with it. */
  cancel(kind, id) {
    return this.#json("POST", `${collection(kind)}/${id}/cancel`);
  }

  /** Runs a failed or cancelled job again; resolves with it. */
  retry(kind, id) {
    return this.#json("POST", `${collection(kind)}/${id}/retry`);
  }

  /** Deletes a job and its files. */
  async delete(kind, id) {
    await this.#fetch("DELETE", `${collection(kind)}/${id}`);
  }

  /**
   * The first `limit` rejected rows of an import, read from the start of its rejects CSV (the
   * rest of the file is not downloaded): `{columns, rows: [{line, errors, raw, fields}], more}`.
   * An import without rejected rows gives no rows.
   */
  async rejects(id, {limit = 10, signal} = {}) {
    let response;
    try {
      response = await this.#fetch("GET", `/v1/imports/${id}/rejects`, {signal});
    } catch (error) {
      if (error.problem?.code === "no_rejects") return {columns: [], rows: [], more: false};
      throw error;
    }
    const reader = new CsvReader();
    let columns = null;
    const rows = [];
    let more = false;
    const stream = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      reading: for (;;) {
        const {value, done} = await stream.read();
        const records = done ? reader.end() : reader.push(value);
        for (const record of records) {
          if (columns === null) { columns = record; continue; }
          if (rows.length === limit) { more = true; break reading; }
          rows.push(rejectedRow(columns, record));
        }
        if (done) break;
      }
    } finally {
      stream.cancel().catch(() => {});
    }
    return {columns: columns || [], rows, more};
  }

  /** The whole rejects CSV of an import, as a Blob (fetched with the token). */
  async rejectsFile(id) {
    return (await this.#fetch("GET", `/v1/imports/${id}/rejects`)).blob();
  }

  /** Named queries: `[{name, connection, params: [{name, type}]}]`. */
  async templates() {
    return (await this.#json("GET", "/v1/templates")).items;
  }

  /** Data connections: `[{name, kind, allow_sql}]`. */
  async connections() {
    return (await this.#json("GET", "/v1/connections")).items;
  }

  /** Tables of a connection: `[{schema, name, columns: [{name, type, nullable}]}]`. */
  async tables(connection) {
    return (await this.#json("GET", `/v1/connections/${encodeURIComponent(connection)}/tables`)).items;
  }

  /** Makes the browser download `url` (a signed link: no token needed) as `filename`. */
  download(url, filename) {
    const link = document.createElement("a");
    link.href = url;
    if (filename) link.download = filename;
    link.rel = "noopener";
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  async #json(method, path, options = {}) {
    const response = await this.#fetch(method, path, options);
    return response.json();
  }

  /** One request; an answer that is not 2xx throws a FerryError with its problem body. */
  async #fetch(method, path, {body, headers = {}, signal} = {}) {
    for (;;) {
      const all = {...headers};
      if (this.token) all.Authorization = `Bearer ${this.token}`;
      if (body !== undefined) all["Content-Type"] = "application/json";
      const response = await fetch(this.baseUrl + path, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if (response.ok) return response;
      const problem = await problemOf(response);
      if (response.status === 401 && this.onUnauthorized) {
        const token = await this.onUnauthorized(problem);
        if (token) {
          this.token = token;
          continue;
        }
      }
      throw new FerryError(problem.detail || problem.title, {problem});
    }
  }
}

/** The collection path of a job kind. */
function collection(kind) {
  if (kind === "export") return "/v1/exports";
  if (kind === "import") return "/v1/imports";
  throw new TypeError(`unknown job kind ${JSON.stringify(kind)}`);
}

/** The problem body of a failed answer (made up from the status when it has none). */
async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      // fall through: a broken body is described by its status
    }
  }
  return {type: "about:blank", title: response.statusText || "HTTP error", status: response.status,
    detail: `${response.status} ${response.statusText}`.trim(), code: "http_error"};
}

/** The error of a job that ended without succeeding. */
function jobFailure(job) {
  const why = job.error?.message || `the ${job.kind} was ${job.state}`;
  const error = new FerryError(why, {job});
  error.problem = {type: "about:blank", title: `The ${job.kind} ${job.state}`, status: null,
    detail: why, code: job.error?.code || job.state};
  return error;
}

/** Runs `attempt` up to `tries` times, waiting 0.5 s, 1 s, 2 s, … between; an abort stops it. */
async function withTries(tries, signal, attempt) {
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      if (tried >= tries || signal?.aborted || error.name === "AbortError") throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** tried));
    }
  }
}

/** Puts `file` to a direct-upload link with XMLHttpRequest (which reports bytes sent). */
function putFile(upload, file, {onUploadProgress, signal} = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method || "PUT", upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => {
      onUploadProgress?.({loaded: event.loaded, total: event.lengthComputable ? event.total : file.size});
    };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) {
        onUploadProgress?.({loaded: file.size, total: file.size});
        resolve();
        return;
      }
      let problem;
      try {
        problem = JSON.parse(request.responseText);
      } catch {
        problem = {title: "Upload refused", status: request.status, detail: `the upload was refused (${request.status})`};
      }
      reject(new FerryError(problem.detail || problem.title || "the upload was refused", {problem}));
    };
    request.onerror = () => reject(new FerryError("the upload could not reach its link (network or CORS)"));
    request.onabort = () => reject(new DOMException("the upload was aborted", "AbortError"));
    if (signal) {
      if (signal.aborted) { request.abort(); return; }
      signal.addEventListener("abort", () => request.abort(), {once: true});
    }
    request.send(file);
  });
}

/** Server-Sent Events from a response body: `{event, data, id}` per event (`id` null if unset). */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = {event: "message", data: [], id: null};
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an unfinished line (or a lone \r that may precede \n: harmless)
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) yield {event: event.event, data: event.data.join("\n"), id: event.id};
          event = {event: "message", data: [], id: event.id};
          continue;
        }
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event.event = value;
        else if (field === "data") event.data.push(value);
        else if (field === "id") event.id = value;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * An incremental CSV reader (RFC 4180: quoted fields with doubled quotes, embedded newlines,
 * CRLF, LF or CR line ends): `push(text)` returns the records completed so far, `end()` the last.
 */
export class CsvReader {
  #field = "";
  #record = [];
  #quoted = false;    // inside a quoted field
  #quoteSeen = false; // a quote inside a quoted field: either its end or the first of a pair
  #cr = false;        // the previous character ended a record with \r

  push(text) {
    const records = [];
    for (const c of text) {
      if (this.#cr) {
        this.#cr = false;
        if (c === "\n") continue;
      }
      if (this.#quoted) {
        if (this.#quoteSeen) {
          this.#quoteSeen = false;
          if (c === '"') { this.#field += '"'; continue; }
          this.#quoted = false; // the quote closed the field; handle c below
        } else if (c === '"') {
          this.#quoteSeen = true;
          continue;
        } else {
          this.#field += c;
          continue;
        }
      }
      if (c === '"' && this.#field === "") this.#quoted = true;
      else if (c === ",") { this.#record.push(this.#field); this.#field = ""; }
      else if (c === "\n" || c === "\r") {
        this.#cr = c === "\r";
        records.push(this.#finish());
      } else this.#field += c;
    }
    return records;
  }

  end() {
    if (this.#quoteSeen) { this.#quoted = false; this.#quoteSeen = false; }
    if (this.#field === "" && this.#record.length === 0 && !this.#quoted) return [];
    return [this.#finish()];
  }

  #finish() {
    this.#record.push(this.#field);
    const record = this.#record;
    this.#record = [];
    this.#field = "";
    this.#quoted = false;
    return record;
  }
}

/** One record of a rejects CSV as `{line, errors, raw, fields}`. */
function rejectedRow(columns, record) {
  const fields = {};
  columns.forEach((name, i) => { fields[name] = record[i] ?? ""; });
  const line = Number(fields._line);
  return {line: Number.isFinite(line) ? line : null, errors: fields._errors || "", raw: fields._raw || "", fields};
}

function isNetworkError(error, signal) {
  return !signal?.aborted && error instanceof TypeError;
}

function backoff(failures) {
  return Math.min(250 * 2 ** (failures - 1), 5000);
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, {once: true});
  });
}
