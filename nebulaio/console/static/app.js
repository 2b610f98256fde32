// NebulaIO console: a single-page app over the console's /session, /api/v1 (Admin API) and
// /s3 (S3 API signed server-side). Every text reaches the page through textContent or an
// attribute, never innerHTML: object keys and names are user input.

const PAGE_SIZE = 200;
const MIB = 1024 * 1024;
const MULTIPART_THRESHOLD = 16 * MIB;
const MIN_PART_SIZE = 16 * MIB;
const MAX_PARTS = 10000; // S3's limit: a larger file gets larger parts
const PARTS_IN_FLIGHT = 4;
const PART_ATTEMPTS = 4;
const RETRY_DELAY_MS = 1000;
const PREVIEW_BYTES = 64 * 1024;
const CHART_POINTS = 60;
const CHART_INTERVAL_MS = 2000;
// The headers that describe an object, as opposed to the exchange that carried them.
const OBJECT_HEADER = /^(content-(type|length|encoding|language)|etag|last-modified|cache-control|expires|x-amz-.*)$/;

const state = { user: null, admin: false, csrf: null, timers: [], notice: null };
const main = document.getElementById("main");

// --- DOM ----------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  const notice = state.notice;
  state.notice = null;
  main.replaceChildren(...(notice ? [notice] : []), ...nodes);
  main.focus({ preventScroll: true });
}

// Shown once, at the top of the next page drawn: what an action must tell after the page
// re-renders to show its result (a new secret key survives the refresh of the key list).
function notify(node) { state.notice = node; }

function toast(text) {
  const note = h("div", {}, text);
  document.getElementById("toast").append(note);
  setTimeout(() => note.remove(), 5000);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (n = Number(n); n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function table(headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map(([text, cls]) => h("th", { class: cls || "", scope: "col" }, text)))),
      h("tbody", {}, rows)));
}

function errorBox() { return h("p", { class: "error", role: "alert" }); }

// --- calls --------------------------------------------------------------------------------

class CallError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function writeHeaders(method, headers = {}) {
  return method === "GET" || method === "HEAD" ? headers : { ...headers, "X-CSRF-Token": state.csrf || "" };
}

async function failure(response) {
  const text = await response.text();
  if (response.status === 401 && state.user) { state.user = null; location.hash = "#/login"; }
  try {
    const error = JSON.parse(text).error;
    return new CallError(response.status, error.code, error.message);
  } catch {
    const xml = new DOMParser().parseFromString(text, "application/xml");
    const code = xml.querySelector("Code")?.textContent || `HTTP ${response.status}`;
    const message = xml.querySelector("Message")?.textContent || response.statusText;
    return new CallError(response.status, code, message);
  }
}

async function api(method, path, body) {
  const headers = writeHeaders(method, body === undefined ? {} : { "Content-Type": "application/json" });
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

function s3Path(bucket, key = "", query = {}) {
  const path = `/s3/${encodeURIComponent(bucket)}/` + key.split("/").map(encodeURIComponent).join("/");
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}

async function s3(method, bucket, key, query, body, headers = {}) {
  const response = await fetch(s3Path(bucket, key, query), { method, body, headers: writeHeaders(method, headers),
    credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response;
}

async function s3xml(method, bucket, key, query, body, headers) {
  const text = await (await s3(method, bucket, key, query, body, headers)).text();
  return new DOMParser().parseFromString(text, "application/xml");
}

function xmlText(node, name) { return node.querySelector(name)?.textContent ?? ""; }

function xmlEscape(text) {
  return text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);
}

// XHR, not fetch: only XHR reports upload progress. The blob is a File or a slice of one, so
// the browser streams it from disk and nothing holds the whole file in memory.
function put(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-CSRF-Token", state.csrf);
    if (blob.type) xhr.setRequestHeader("Content-Type", blob.type);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => xhr.status < 300 ? resolve(xhr.getResponseHeader("ETag"))
      : reject(new CallError(xhr.status, `HTTP ${xhr.status}`, xhr.responseText.slice(0, 300)));
    xhr.onerror = () => reject(new CallError(0, "NetworkError", "The upload was interrupted."));
    xhr.send(blob);
  });
}

// A PUT again after a dropped connection or a server error, a little later each time; a refusal
// (4xx: no rights, session over) is final.
async function putRetried(url, blob, onProgress) {
  for (let attempt = 1; ; attempt++) {
    try { return await put(url, blob, onProgress); }
    catch (error) {
      if (attempt === PART_ATTEMPTS || (error.status >= 400 && error.status < 500)) throw error;
      onProgress(0);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    }
  }
}

function partSize(size) { return Math.max(MIN_PART_SIZE, Math.ceil(size / MAX_PARTS / MIB) * MIB); }

// Small files in one PUT; larger ones as a multipart upload of slices of the file, a few parts
// in flight at once, each retried on its own. onProgress gets the bytes sent so far.
async function upload(bucket, key, file, onProgress) {
  if (file.size < MULTIPART_THRESHOLD) return putRetried(s3Path(bucket, key), file, onProgress);
  const size = partSize(file.size);
  const count = Math.ceil(file.size / size);
  const created = await s3xml("POST", bucket, key, { uploads: "" }, undefined,
    file.type ? { "Content-Type": file.type } : {});
  const uploadId = xmlText(created, "UploadId");
  const etags = new Array(count);
  const sent = new Array(count).fill(0);
  let total = 0;
  let next = 0;
  let failed = false;
  const sender = async () => {
    while (next < count && !failed) {
      const index = next++;
      const report = (loaded) => { total += loaded - sent[index]; sent[index] = loaded; onProgress(total); };
      try {
        etags[index] = await putRetried(s3Path(bucket, key, { partNumber: index + 1, uploadId }),
          file.slice(index * size, Math.min(file.size, (index + 1) * size)), report);
      } catch (error) { failed = true; throw error; }
    }
  };
  // Every sender settles before an abort, so no part lands after it.
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(PARTS_IN_FLIGHT, count) }, sender));
  const refused = outcomes.find((outcome) => outcome.status === "rejected");
  try {
    if (refused) throw refused.reason;
    const parts = etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(etag)}</ETag></Part>`);
    await s3("POST", bucket, key, { uploadId },
      `<CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`, { "Content-Type": "application/xml" });
  } catch (error) {
    await s3("DELETE", bucket, key, { uploadId }).catch(() => {});
    throw error;
  }
}

// --- session ------------------------------------------------------------------------------

function setSession(info) {
  Object.assign(state, { user: info.user, admin: info.admin, csrf: info.csrf });
  document.getElementById("who").textContent = info.user;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !info.admin;
}

function loginPage() {
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const error = errorBox();
  const form = h("form", { class: "card login", "aria-label": "Log in" },
    h("h1", {}, "Log in"),
    h("label", {}, "Access key", h("input", { name: "accessKey", autocomplete: "username", required: true })),
    h("label", {}, "Secret key", h("input", { name: "secretKey", type: "password", autocomplete: "current-password",
      required: true })),
    h("button", { class: "primary", type: "submit" }, "Log in"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      setSession(await api("POST", "/session", { accessKey: form.accessKey.value, secretKey: form.secretKey.value }));
      location.hash = "#/buckets";
    } catch (e) { error.textContent = e.message; }
  });
  show(form);
  form.accessKey.focus();
}

// --- buckets ------------------------------------------------------------------------------

async function bucketsPage() {
  const { buckets } = await api("GET", "/api/v1/buckets");
  const error = errorBox();
  const rows = buckets.map((b) => h("tr", {},
    h("td", { class: "key" }, h("a", { href: `#/browse/${encodeURIComponent(b.name)}/` }, b.name)),
    h("td", { class: "num" }, b.objects.toLocaleString()),
    h("td", { class: "num" }, bytes(b.size)),
    h("td", { class: "wide" }, b.created.slice(0, 10)),
    h("td", {}, h("div", { class: "row" },
      h("a", { class: "button", href: `#/settings/${encodeURIComponent(b.name)}` }, "Settings"),
      h("button", { class: "danger", type: "button", "aria-label": `Delete bucket ${b.name}`, onclick: async () => {
        if (!confirm(`Delete bucket ${b.name}?`)) return;
        try { await api("DELETE", `/api/v1/buckets/${encodeURIComponent(b.name)}`); route(); }
        catch (e) {
          error.textContent = e.code === "BucketNotEmpty"
            ? `Bucket ${b.name} is not empty: delete its objects and versions first.` : e.message;
        }
      } }, "Delete")))));
  const form = h("form", { class: "row", "aria-label": "Create bucket" },
    h("input", { name: "name", placeholder: "new-bucket-name", "aria-label": "Bucket name", required: true }),
    h("label", {}, h("input", { type: "checkbox", name: "versioning" }), "Versioning"),
    h("label", {}, h("input", { type: "checkbox", name: "lock" }), "Object lock"),
    h("button", { class: "primary", type: "submit" }, "Create bucket"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.name.value.trim();
    try {
      await s3("PUT", name, "", {}, undefined, form.lock.checked ? { "x-amz-bucket-object-lock-enabled": "true" } : {});
      if (form.versioning.checked && !form.lock.checked) await setVersioning(name, "Enabled");
      toast(`Bucket ${name} created`);
      route();
    } catch (e) { error.textContent = e.message; }
  });
  show(h("h1", {}, "Buckets"), h("div", { class: "card" }, form, error),
    table([["Name"], ["Objects", "num"], ["Size", "num"], ["Created", "wide"], [""]], rows,
      "No buckets yet: create one above."));
}

function setVersioning(bucket, status) {
  return s3("PUT", bucket, "", { versioning: "" },
    `<VersioningConfiguration><Status>${status}</Status></VersioningConfiguration>`);
}

// One settings editor: load the current document, save it, remove it; server errors shown as is.
function documentEditor(title, { load, save, remove, hint }) {
  const area = h("textarea", { "aria-label": title, spellcheck: false });
  const status = errorBox();
  const run = (action, done) => async () => {
    status.className = "error";
    try { await action(); status.className = "ok"; status.textContent = done; }
    catch (e) { status.textContent = `${e.code}: ${e.message}`; }
  };
  const card = h("section", { class: "card", "aria-label": title }, h("h2", {}, title),
    hint ? h("p", { class: "muted" }, hint) : null, area,
    h("div", { class: "row" },
      h("button", { class: "primary", type: "button", onclick: run(() => save(area.value), "Saved.") }, `Save ${title.toLowerCase()}`),
      remove ? h("button", { class: "danger", type: "button", onclick: run(async () => { await remove(); area.value = ""; }, "Removed.") }, "Remove") : null),
    status);
  load().then((text) => { area.value = text; }).catch((e) => {
    if (!["NoSuchBucketPolicy", "NoSuchCORSConfiguration", "NoSuchTagSet", "NoSuchLifecycleConfiguration"].includes(e.code))
      status.textContent = e.message;
  });
  return card;
}

function xmlDocumentEditor(bucket, title, query, hint) {
  return documentEditor(title, {
    hint,
    load: async () => (await s3("GET", bucket, "", query)).text(),
    save: (text) => s3("PUT", bucket, "", query, text, { "Content-Type": "application/xml" }),
    remove: () => s3("DELETE", bucket, "", query),
  });
}

function tagLines(xml) {
  return [...xml.querySelectorAll("Tag")].map((t) => `${xmlText(t, "Key")}=${xmlText(t, "Value")}`).join("\n");
}

function tagXml(text) {
  const tags = text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const at = line.indexOf("=");
    const [key, value] = at < 0 ? [line, ""] : [line.slice(0, at), line.slice(at + 1)];
    return `<Tag><Key>${xmlEscape(key)}</Key><Value>${xmlEscape(value)}</Value></Tag>`;
  });
  return `<Tagging><TagSet>${tags.join("")}</TagSet></Tagging>`;
}

function tagEditor(title, bucket, key) {
  return documentEditor(title, {
    hint: "One tag a line: key=value.",
    load: async () => tagLines(await s3xml("GET", bucket, key, { tagging: "" })),
    save: (text) => s3("PUT", bucket, key, { tagging: "" }, tagXml(text), { "Content-Type": "application/xml" }),
    remove: () => s3("DELETE", bucket, key, { tagging: "" }),
  });
}

async function settingsPage(bucket) {
  const details = await api("GET", `/api/v1/buckets/${encodeURIComponent(bucket)}`);
  const versioning = h("select", { "aria-label": "Versioning" },
    ["Enabled", "Suspended"].map((s) => h("option", { value: s, selected: details.versioning === s }, s)));
  const versioningStatus = errorBox();
  const versioningShown = h("dd", {}, details.versioning);
  show(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/buckets" }, "Buckets"), "›",
      h("a", { href: `#/browse/${encodeURIComponent(bucket)}/` }, bucket), "›", "Settings"),
    h("h1", {}, `Settings of ${bucket}`),
    h("section", { class: "card" },
      h("dl", { class: "meta" },
        h("dt", {}, "Objects"), h("dd", {}, details.objects.toLocaleString()),
        h("dt", {}, "Size"), h("dd", {}, bytes(details.size)),
        h("dt", {}, "Owner"), h("dd", {}, details.owner),
        h("dt", {}, "Object lock"), h("dd", {}, details.objectLock ? "on" : "off"),
        h("dt", {}, "Versioning"), versioningShown),
      h("h2", {}, "Versioning"),
      h("div", { class: "row" }, versioning, h("button", { type: "button", onclick: async () => {
        try {
          await setVersioning(bucket, versioning.value);
          versioningShown.textContent = versioning.value;
          versioningStatus.className = "ok"; versioningStatus.textContent = "Saved.";
        }
        catch (e) { versioningStatus.className = "error"; versioningStatus.textContent = e.message; }
      } }, "Apply")), versioningStatus),
    documentEditor("Bucket policy", {
      hint: "AWS policy JSON. The server checks it and says what is wrong.",
      load: async () => JSON.stringify(JSON.parse(await (await s3("GET", bucket, "", { policy: "" })).text()), null, 2),
      save: (text) => s3("PUT", bucket, "", { policy: "" }, text, { "Content-Type": "application/json" }),
      remove: () => s3("DELETE", bucket, "", { policy: "" }),
    }),
    tagEditor("Tags", bucket, ""),
    xmlDocumentEditor(bucket, "CORS", { cors: "" }, "S3's CORSConfiguration XML."),
    documentEditor("Notifications", {
      hint: "S3's NotificationConfiguration XML; a rule names a target by the ARN the Notifications page shows.",
      load: async () => (await s3("GET", bucket, "", { notification: "" })).text(),
      save: (text) => s3("PUT", bucket, "", { notification: "" }, text, { "Content-Type": "application/xml" }),
      remove: () => s3("PUT", bucket, "", { notification: "" }, "<NotificationConfiguration/>",
        { "Content-Type": "application/xml" }),
    }),
    xmlDocumentEditor(bucket, "Lifecycle", { lifecycle: "" }, "S3's LifecycleConfiguration XML."));
}

// --- object browser -----------------------------------------------------------------------

function browseHash(bucket, prefix) {
  return `#/browse/${encodeURIComponent(bucket)}/${prefix.split("/").map(encodeURIComponent).join("/")}`;
}

function objectHash(bucket, key) {
  return `#/object/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

function crumbs(bucket, prefix) {
  const parts = prefix.split("/").filter(Boolean);
  const links = [h("a", { href: "#/buckets" }, "Buckets"), "›", h("a", { href: browseHash(bucket, "") }, bucket)];
  parts.forEach((part, i) => links.push("›", h("a", { href: browseHash(bucket, parts.slice(0, i + 1).join("/") + "/") }, part)));
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, links);
}

// Files of a drop, folders walked; each with the relative path it gets under the prefix.
async function droppedFiles(items) {
  const files = [];
  const walk = async (entry, path) => {
    if (entry.isFile) {
      files.push({ file: await new Promise((ok, ko) => entry.file(ok, ko)), path: path + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let batch; (batch = await new Promise((ok, ko) => reader.readEntries(ok, ko))).length;) {
        for (const child of batch) await walk(child, `${path}${entry.name}/`);
      }
    }
  };
  for (const entry of [...items].map((item) => item.webkitGetAsEntry()).filter(Boolean)) await walk(entry, "");
  return files;
}

function uploader(bucket, prefix, onDone) {
  const list = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const start = async (files) => {
    const jobs = files.map(({ file, path }) => {
      const bar = h("progress", { max: file.size || 1, value: 0, "aria-label": `Upload of ${path}` });
      const percent = h("output", {}, "0%");
      list.append(h("li", {}, h("span", {}, path), bar, percent));
      return { file, key: prefix + path, bar, percent };
    });
    for (const job of jobs) {
      try {
        await upload(bucket, job.key, job.file, (loaded) => {
          job.bar.value = loaded;
          job.percent.textContent = `${Math.floor((100 * loaded) / (job.file.size || 1))}%`;
        });
        job.bar.value = job.bar.max;
        job.percent.textContent = "done";
      } catch (e) { job.percent.textContent = "failed"; job.percent.title = e.message; toast(`${job.key}: ${e.message}`); }
    }
    onDone();
  };
  const filesInput = h("input", { type: "file", multiple: true, "aria-label": "Choose files to upload",
    onchange: () => start([...filesInput.files].map((file) => ({ file, path: file.name }))) });
  const folderInput = h("input", { type: "file", webkitdirectory: true, "aria-label": "Choose a folder to upload",
    onchange: () => start([...folderInput.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }))) });
  const zone = h("div", { class: "drop" }, "Drop files or folders here, or choose: ", filesInput, " folder: ", folderInput);
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    start(await droppedFiles(event.dataTransfer.items));
  });
  return h("section", { class: "card", "aria-label": "Upload" }, zone, list);
}

async function browsePage(bucket, prefix) {
  // One ListObjectsV2 of PAGE_SIZE keys per page drawn: tokens[n] starts page n, so a large
  // folder is never listed whole and the table never holds more than one page.
  const tokens = [""];
  let current = 0;
  let latest = 0; // the newest listing asked for; an older one that answers late is dropped
  const listing = h("div", { "aria-live": "polite" });
  const error = errorBox();
  const search = h("input", { type: "search", placeholder: "Filter by prefix (press /)", "aria-label": "Search by prefix" });
  const pager = h("div", { class: "row" });
  const selected = new Set();
  const deleteButton = h("button", { class: "danger", type: "button", disabled: true, onclick: async () => {
    if (!confirm(`Delete ${selected.size} object(s)?`)) return;
    const objects = [...selected].map((key) => `<Object><Key>${xmlEscape(key)}</Key></Object>`).join("");
    try {
      const result = await s3xml("POST", bucket, "", { delete: "" },
        `<Delete><Quiet>true</Quiet>${objects}</Delete>`, { "Content-Type": "application/xml" });
      const failed = [...result.querySelectorAll("Error")].map((e) => `${xmlText(e, "Key")}: ${xmlText(e, "Message")}`);
      error.textContent = failed.join("\n");
      load(current);
    } catch (e) { error.textContent = e.message; }
  } }, "Delete selected");

  const load = async (page) => {
    const ticket = ++latest;
    current = page;
    tokens.length = page + 1;
    selected.clear();
    deleteButton.disabled = true;
    const query = { "list-type": "2", delimiter: "/", prefix: prefix + search.value, "max-keys": PAGE_SIZE };
    if (tokens[page]) query["continuation-token"] = tokens[page];
    let xml;
    try { xml = await s3xml("GET", bucket, "", query); } catch (e) { error.textContent = e.message; return; }
    if (ticket !== latest) return;
    const next = xmlText(xml, "NextContinuationToken");
    if (next) tokens.push(next);
    const folders = [...xml.querySelectorAll("CommonPrefixes > Prefix")].map((p) => p.textContent);
    const objects = [...xml.querySelectorAll("Contents")].map((c) => ({
      key: xmlText(c, "Key"), size: Number(xmlText(c, "Size")), modified: xmlText(c, "LastModified") }));
    const rows = [
      ...folders.map((folder) => h("tr", {}, h("td", {}),
        h("td", { class: "key" }, h("a", { href: browseHash(bucket, folder) }, `📁 ${folder.slice(prefix.length)}`)),
        h("td", {}), h("td", { class: "wide" }), h("td", {}))),
      ...objects.map((o) => h("tr", {},
        h("td", {}, h("input", { type: "checkbox", "aria-label": `Select ${o.key}`, onchange: (event) => {
          event.target.checked ? selected.add(o.key) : selected.delete(o.key);
          deleteButton.disabled = !selected.size;
        } })),
        h("td", { class: "key" }, h("a", { href: objectHash(bucket, o.key) }, o.key.slice(prefix.length))),
        h("td", { class: "num" }, bytes(o.size)),
        h("td", { class: "wide" }, o.modified.replace("T", " ").slice(0, 19)),
        h("td", {}, h("a", { class: "button", href: s3Path(bucket, o.key), download: o.key.split("/").pop() }, "Download")))),
    ];
    listing.replaceChildren(table([[""], ["Name"], ["Size", "num"], ["Modified", "wide"], [""]], rows,
      search.value ? "No key starts with that prefix." : "This folder is empty."));
    pager.replaceChildren(
      h("button", { type: "button", disabled: page === 0, onclick: () => load(page - 1) }, "‹ Previous"),
      h("span", { class: "muted" }, `Page ${page + 1}`),
      h("button", { type: "button", disabled: !next, onclick: () => load(page + 1) }, "Next ›"));
  };
  let debounce;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => load(0), 250); });
  show(crumbs(bucket, prefix),
    h("div", { class: "row" }, h("h1", { class: "grow" }, prefix || bucket),
      h("a", { class: "button", href: `#/settings/${encodeURIComponent(bucket)}` }, "Bucket settings")),
    uploader(bucket, prefix, () => load(current)),
    h("div", { class: "row" }, search, deleteButton), error, listing, pager);
  keyHandler = (event) => {
    if (event.key === "/" && document.activeElement !== search) { event.preventDefault(); search.focus(); }
  };
  await load(0);
}

async function preview(bucket, key, type) {
  if (type.startsWith("image/")) {
    const blob = await (await s3("GET", bucket, key)).blob();
    return h("img", { src: URL.createObjectURL(blob), alt: `Preview of ${key}` });
  }
  if (type.startsWith("text/") || /json|xml|javascript|yaml|csv/.test(type)) {
    const response = await s3("GET", bucket, key, {}, undefined, { Range: `bytes=0-${PREVIEW_BYTES - 1}` });
    return h("pre", {}, await response.text());
  }
  return h("p", { class: "muted" }, "No preview for this type.");
}

async function objectPage(bucket, key) {
  const head = await s3("HEAD", bucket, key);
  const headers = [...head.headers.entries()].filter(([name]) => OBJECT_HEADER.test(name) && !name.startsWith("x-amz-id-2") && name !== "x-amz-request-id");
  const type = head.headers.get("content-type") || "";
  const versionsBody = h("div", {}, h("p", { class: "muted" }, "Loading versions…"));
  const previewBox = h("div", { class: "preview" });
  const shareOut = h("input", { readonly: true, class: "grow", "aria-label": "Share link" });
  const expiry = h("select", { "aria-label": "Link expiry" },
    [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"]].map(([v, t]) => h("option", { value: v }, t)));
  const shareError = errorBox();
  const folder = key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : "";
  show(crumbs(bucket, folder), h("h1", { class: "key" }, key.slice(folder.length)),
    h("div", { class: "row" },
      h("a", { class: "button primary", href: s3Path(bucket, key), download: key.split("/").pop() }, "Download"),
      h("button", { class: "danger", type: "button", onclick: async () => {
        if (!confirm(`Delete ${key}?`)) return;
        await s3("DELETE", bucket, key);
        location.hash = browseHash(bucket, folder);
      } }, "Delete")),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-label": "Metadata" }, h("h2", {}, "Metadata"),
        h("dl", { class: "meta" }, headers.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]))),
      h("section", { class: "card", "aria-label": "Preview" }, h("h2", {}, "Preview"), previewBox)),
    h("section", { class: "card", "aria-label": "Share" }, h("h2", {}, "Share link"),
      h("div", { class: "row" }, expiry, h("button", { type: "button", onclick: async () => {
        try {
          shareOut.value = (await api("POST", "/share", { bucket, key, expires: Number(expiry.value) })).url;
          shareOut.select();
        } catch (e) { shareError.textContent = e.message; }
      } }, "Make link"), shareOut), shareError),
    tagEditor("Object tags", bucket, key),
    h("section", { class: "card", "aria-label": "Versions" }, h("h2", {}, "Versions"), versionsBody));
  preview(bucket, key, type).then((node) => previewBox.replaceChildren(node))
    .catch((e) => previewBox.replaceChildren(h("p", { class: "error" }, e.message)));
  try {
    const xml = await s3xml("GET", bucket, "", { versions: "", prefix: key });
    const rows = [...xml.querySelectorAll("Version, DeleteMarker")].filter((v) => xmlText(v, "Key") === key).map((v) =>
      h("tr", {}, h("td", { class: "key" }, xmlText(v, "VersionId")),
        h("td", {}, v.tagName === "DeleteMarker" ? "delete marker" : bytes(xmlText(v, "Size"))),
        h("td", { class: "wide" }, xmlText(v, "LastModified")),
        h("td", {}, xmlText(v, "IsLatest") === "true" ? "latest" : "")));
    versionsBody.replaceChildren(table([["Version"], ["Size"], ["Modified", "wide"], [""]], rows));
  } catch (e) { versionsBody.replaceChildren(h("p", { class: "muted" }, e.message)); }
}

// --- identities ---------------------------------------------------------------------------

function listOf(document, name) { return Array.isArray(document) ? document : document?.[name] || []; }

function nameOf(item) { return typeof item === "string" ? item : item.name ?? item.accessKey; }

function inlineForm(label, fields, onSubmit, error) {
  const form = h("form", { class: "row", "aria-label": label },
    fields.map(([name, placeholder]) => h("input", { name, placeholder, "aria-label": placeholder, required: true })),
    h("button", { class: "primary", type: "submit" }, label));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await onSubmit(Object.fromEntries(fields.map(([name]) => [name, form[name].value.trim()]))); }
    catch (e) { error.textContent = `${e.code}: ${e.message}`; }
  });
  return form;
}

async function iamPage() {
  const error = errorBox();
  let users, groups, policies;
  try {
    [users, groups, policies] = await Promise.all([api("GET", "/api/v1/users"), api("GET", "/api/v1/groups"),
      api("GET", "/api/v1/policies")]);
  } catch (e) {
    show(h("h1", {}, "Identities"), h("p", { class: "error" },
      e.status === 404 ? "This node's Admin API has no identity endpoints." : e.message));
    return;
  }
  const enc = encodeURIComponent;
  // A button whose call changes a list: the page is drawn again, or the error shown.
  const change = (label, call, cls = "") => h("button", { class: cls, type: "button",
    onclick: () => call().then(route, (e) => { error.textContent = e.message; }) }, label);
  const userRows = await Promise.all(listOf(users, "users").map(async (user) => {
    const name = nameOf(user);
    const disabled = user.enabled === false;
    const keys = listOf(await api("GET", `/api/v1/users/${enc(name)}/keys`).catch(() => []), "accessKeys");
    return h("tr", {}, h("td", { class: "key" }, name, disabled ? " (disabled)" : ""),
      h("td", {}, keys.map((k) => h("div", { class: "row" }, h("code", {}, k.accessKey), k.enabled === false ? " (disabled)" : "",
        change(k.enabled === false ? "Enable" : "Disable",
          () => api("PATCH", `/api/v1/keys/${enc(k.accessKey)}`, { enabled: k.enabled === false })),
        change("Delete key", () => api("DELETE", `/api/v1/keys/${enc(k.accessKey)}`), "danger")))),
      h("td", {}, h("div", { class: "row" },
        change(disabled ? "Enable user" : "Disable user", () => api("PATCH", `/api/v1/users/${enc(name)}`, { enabled: disabled })),
        h("button", { type: "button", onclick: async () => {
          try {
            const pair = await api("POST", `/api/v1/users/${enc(name)}/keys`, {});
            notify(h("div", { class: "card", role: "alert" },
              h("p", {}, `New key of ${name}. The secret is shown this once:`),
              h("p", { class: "secret" }, `Access key: ${pair.accessKey}`),
              h("p", { class: "secret" }, `Secret key: ${pair.secretKey}`)));
            await route();
          } catch (e) { error.textContent = e.message; }
        } }, "New key"),
        change("Delete", async () => confirm(`Delete user ${name}?`) && api("DELETE", `/api/v1/users/${enc(name)}`), "danger"))));
  }));
  const policyEditor = h("textarea", { "aria-label": "Policy document", spellcheck: false },
    JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::bucket/*"] }] }, null, 2));
  const policyName = h("input", { placeholder: "policy name", "aria-label": "Policy name" });
  show(h("h1", {}, "Identities"), error,
    h("section", { class: "card", "aria-label": "Users" }, h("h2", {}, "Users"),
      inlineForm("Create user", [["name", "user name"]], (v) => api("POST", "/api/v1/users", v).then(route), error),
      table([["User"], ["Access keys"], [""]], userRows)),
    h("section", { class: "card", "aria-label": "Groups" }, h("h2", {}, "Groups"),
      inlineForm("Create group", [["name", "group name"]], (v) => api("POST", "/api/v1/groups", v).then(route), error),
      inlineForm("Add member", [["group", "group"], ["user", "user"]],
        (v) => api("PUT", `/api/v1/groups/${enc(v.group)}/members/${enc(v.user)}`).then(route), error),
      table([["Group"], ["Members"], [""]], listOf(groups, "groups").map((g) => h("tr", {},
        h("td", {}, nameOf(g)),
        h("td", {}, (g.members || []).map((member) => h("div", { class: "row" }, h("span", {}, member),
          change("Remove", () => api("DELETE", `/api/v1/groups/${enc(nameOf(g))}/members/${enc(member)}`), "danger")))),
        h("td", {}, change("Delete", () => api("DELETE", `/api/v1/groups/${enc(nameOf(g))}`), "danger")))))),
    h("section", { class: "card", "aria-label": "Policies" }, h("h2", {}, "Policies"),
      table([["Policy"], ["Attached to"], [""]], listOf(policies, "policies").map((p) => h("tr", {},
        h("td", {}, nameOf(p)), h("td", {}, [...(p.users || []), ...(p.groups || [])].join(", ")),
        h("td", {}, change("Delete", () => api("DELETE", `/api/v1/policies/${enc(nameOf(p))}`), "danger"))))),
      h("h2", {}, "Create or replace a policy"), h("div", { class: "row" }, policyName), policyEditor,
      h("button", { class: "primary", type: "button", onclick: async () => {
        try {
          const response = await fetch(`/api/v1/policies/${enc(policyName.value.trim())}`, { method: "PUT",
            headers: writeHeaders("PUT", { "Content-Type": "application/json" }), body: policyEditor.value });
          if (!response.ok) throw await failure(response);
          route();
        } catch (e) { error.textContent = `${e.code}: ${e.message}`; }
      } }, "Save policy"),
      h("h2", {}, "Attach or detach"),
      inlineForm("Attach to user", [["policy", "policy"], ["user", "user"]],
        (v) => api("POST", `/api/v1/policies/${enc(v.policy)}/attach`, { user: v.user }).then(route), error),
      inlineForm("Detach from user", [["policy", "policy"], ["user", "user"]],
        (v) => api("POST", `/api/v1/policies/${enc(v.policy)}/detach`, { user: v.user }).then(route), error),
      inlineForm("Attach to group", [["policy", "policy"], ["group", "group"]],
        (v) => api("POST", `/api/v1/policies/${enc(v.policy)}/attach`, { group: v.group }).then(route), error),
      inlineForm("Detach from group", [["policy", "policy"], ["group", "group"]],
        (v) => api("POST", `/api/v1/policies/${enc(v.policy)}/detach`, { group: v.group }).then(route), error)));
}

// --- cluster ------------------------------------------------------------------------------

// Sums of the Prometheus samples named `name`, over every label set.
function metric(text, name) {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === "{" || line[name.length] === " ")) total += Number(line.split(" ").pop()) || 0;
  }
  return total;
}

function chart(title, unit) {
  const canvas = h("canvas", { width: 600, height: 160, role: "img", "aria-label": title });
  const label = h("span", { class: "muted" });
  const points = [];
  const draw = (value) => {
    points.push(value);
    if (points.length > CHART_POINTS) points.shift();
    label.textContent = `now ${unit(value)}`;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.clientWidth * ratio;
    canvas.height = canvas.clientHeight * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const [width, height] = [canvas.clientWidth, canvas.clientHeight];
    const top = Math.max(...points, 1e-9);
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#dde1ea";
    ctx.beginPath(); ctx.moveTo(0, height - 1); ctx.lineTo(width, height - 1); ctx.stroke();
    // The newest point at the right edge; older ones scroll off to the left.
    const xy = points.map((v, i) => [width - 4 - ((points.length - 1 - i) / (CHART_POINTS - 1)) * (width - 8),
      height - 4 - (v / top) * (height - 24)]);
    ctx.strokeStyle = ctx.fillStyle = "#3b5bdb"; ctx.lineWidth = 2; ctx.beginPath();
    xy.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    for (const [x, y] of xy) { ctx.beginPath(); ctx.arc(x, y, 2.5, 0, 2 * Math.PI); ctx.fill(); }
    ctx.fillStyle = "#5c6475"; ctx.font = "12px system-ui"; ctx.fillText(`max ${unit(top)}`, 6, 14);
  };
  return { node: h("section", { class: "card", "aria-label": title }, h("div", { class: "row" }, h("h2", { class: "grow" }, title), label), canvas), draw };
}

function usage(label, used, total) {
  const share = total ? used / total : 0;
  const fill = h("div");
  fill.style.width = `${(share * 100).toFixed(1)}%`; // CSSOM, not a style attribute: the CSP allows it
  return h("div", {}, h("div", { class: "row" }, h("span", { class: "grow" }, label), `${bytes(used)} of ${bytes(total)}`),
    h("div", { class: "bar", role: "meter", "aria-label": label, "aria-valuenow": Math.round(share * 100), "aria-valuemin": 0, "aria-valuemax": 100 },
      fill));
}

async function clusterPage() {
  const status = await api("GET", "/api/v1/cluster/status");
  const error = errorBox();
  // A storage node can be drained; a draining one shows how far it has come (its cell, by node id).
  const drains = new Map();
  const counted = {};
  const drainCell = (m) => {
    if (!m.id || !["hybrid", "storage"].includes(m.role)) return h("td", {}, "–");
    if (!m.draining) {
      return h("td", {}, h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Drain node ${m.id}? It takes no new objects, and its objects move to the other nodes.`)) return;
        try { await api("POST", `/api/v1/cluster/nodes/${encodeURIComponent(m.id)}/drain`); await route(); }
        catch (e) { error.textContent = e.message; }
      } }, "Drain"));
    }
    const cell = h("td", {}, "draining");
    drains.set(m.id, cell);
    return cell;
  };
  const showDrains = () => Promise.all([...drains].map(async ([id, cell]) => {
    const d = await api("GET", `/api/v1/cluster/nodes/${encodeURIComponent(id)}/drain`);
    counted[id] = Math.max(counted[id] || 0, d.objects || 0);
    const done = d.done ? 1 : counted[id] ? 1 - d.objects / counted[id] : 0;
    const eta = d.etaSeconds === null ? "" : `, about ${Math.round(d.etaSeconds)} s`;
    cell.replaceChildren(h("progress", { max: 100, value: Math.round(done * 100), "aria-label": `Drain of ${id}` }),
      h("div", { class: "muted" }, d.done ? "drained: it can be removed"
        : d.objects === null ? "draining; not counted yet" : `${d.objects} objects (${bytes(d.bytes)}) left${eta}`));
  }));
  const rate = chart("Requests per second", (v) => v.toFixed(1));
  const latency = chart("Mean latency (ms)", (v) => v.toFixed(1));
  const throughput = chart("Throughput (in + out)", (v) => `${bytes(v)}/s`);
  const share = (used, total) => `${bytes(used)} of ${bytes(total)}`;
  const members = status.members.map((m) => h("tr", {}, h("td", {}, m.id ?? "?"), h("td", { class: "wide" }, m.address),
    h("td", {}, m.role), h("td", {}, m.state ?? (m.connected === false ? "unreachable" : "–")),
    h("td", {}, m.raftState ?? "–"), h("td", { class: "wide" }, m.term ?? "–"), h("td", { class: "wide" }, m.commitIndex ?? "–"),
    h("td", {}, m.capacity ? share(m.capacity.used, m.capacity.total) : "–"),
    h("td", { class: "wide" }, m.memory ? share(m.memory.total - m.memory.available, m.memory.total) : "–"),
    drainCell(m)));
  const repair = h("dl", { class: "meta" });
  const cycle = h("progress", { max: 100, value: 0, "aria-label": "Repair cycle" });
  const scrub = h("dl", { class: "meta" });
  const scrubPass = h("progress", { max: 100, value: 0, "aria-label": "Scrub pass" });
  const scrubStart = h("button", { type: "button", onclick: async () => {
    try { await api("POST", "/api/v1/cluster/scrub"); await showScrub(); }
    catch (e) { error.textContent = e.message; }
  } }, "Scrub now");
  show(h("h1", {}, "Cluster"), error,
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-label": "Raft" }, h("h2", {}, "Raft"),
        h("dl", { class: "meta" },
          h("dt", {}, "This node"), h("dd", {}, `${status.node.id} (${status.node.role}, ${status.node.state})`),
          h("dt", {}, "Leader"), h("dd", {}, status.raft.leader ?? "none"),
          h("dt", {}, "Term"), h("dd", {}, status.raft.term),
          h("dt", {}, "Commit index"), h("dd", {}, status.raft.commitIndex),
          h("dt", {}, "Applied index"), h("dd", {}, status.raft.appliedIndex),
          h("dt", {}, "Ready"), h("dd", {}, status.raft.ready ? "yes" : "no"))),
      h("section", { class: "card", "aria-label": "Resources" }, h("h2", {}, "Resources"),
        usage("Memory", status.memory.used, status.memory.total),
        usage("Disk", status.disk.used, status.disk.total),
        h("p", { class: "muted key data-path" }, `Data in ${status.disk.path}`),
        h("p", { class: "muted" }, `${status.cpus} CPUs, load ${status.load.map((l) => l.toFixed(2)).join(" ")}`))),
    h("section", { class: "card", "aria-label": "Nodes" }, h("h2", {}, "Nodes"),
      table([["Node"], ["Raft address", "wide"], ["Role"], ["State"], ["Raft"], ["Term", "wide"], ["Commit index", "wide"],
        ["Disk used"], ["Memory used", "wide"], ["Drain"]], members)),
    h("section", { class: "card", "aria-label": "Repair" }, h("h2", {}, "Repair"), cycle, repair),
    h("section", { class: "card", "aria-label": "Scrub" },
      h("div", { class: "row" }, h("h2", { class: "grow" }, "Scrub"), scrubStart), scrubPass, scrub),
    h("div", { class: "grid" }, rate.node, latency.node, throughput.node));
  const showRepair = async () => {
    const r = await api("GET", "/api/v1/cluster/repair");
    // A cycle walks every placed file; the last one's length tells how far this one has come.
    cycle.value = r.cycleFiles ? Math.min(100, Math.round((100 * r.cycleChecked) / r.cycleFiles)) : 0;
    const facts = [["Node", r.node], ["Running", r.running ? "yes" : "no"], ["Passes", r.passes], ["Cycles", r.cycles],
      ["Walking", r.position ?? "–"], ["Left in this cycle", r.remainingFiles === null ? "not known yet" : `${r.remainingFiles} files`],
      ["Checked", r.checked], ["Under-replicated", r.underReplicated], ["Misplaced", r.misplaced],
      ["Written alone, not yet replicated", r.unclaimed], ["Copied", r.copied], ["Claimed", r.claimed], ["Removed", r.removed],
      ["Bytes moved", bytes(r.bytesMoved)], ["Last pass", r.lastPassFinished ? `${r.lastPassFinished} (${r.lastPassSeconds.toFixed(2)} s)` : "none yet"]];
    repair.replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]));
  };
  // The scrub re-reads every file this node holds against the checksum recorded when it was written.
  const showScrub = async () => {
    const s = await api("GET", "/api/v1/cluster/scrub");
    scrubPass.value = s.bytes ? Math.round((100 * s.bytesDone) / s.bytes) : s.files ? Math.round((100 * s.filesDone) / s.files) : 0;
    const facts = [["Node", s.node], ["Running", s.running ? "yes" : "no"], ["Passes", s.passes],
      ["This pass", `${s.filesDone} of ${s.files} files, ${bytes(s.bytesDone)} of ${bytes(s.bytes)}`],
      ["Without a recorded checksum", s.unverifiable], ["Damaged found", s.corrupt], ["Healed", s.healed],
      ["Not healed", s.unhealed], ["Reported by reads", s.reported], ["Rate", `${bytes(s.rate)}/s`],
      ["Last pass", s.lastPassFinished ? `${s.lastPassFinished} (${s.lastPassSeconds.toFixed(2)} s)` : "none yet"]];
    scrub.replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]));
  };
  let last = null;
  const sample = async () => {
    const text = await (await fetch("/metrics", { credentials: "same-origin" })).text();
    const now = {
      time: performance.now(), requests: metric(text, "nebulaio_s3_requests_total"),
      seconds: metric(text, "nebulaio_s3_request_duration_seconds_sum"),
      count: metric(text, "nebulaio_s3_request_duration_seconds_count"),
      bytes: metric(text, "nebulaio_s3_received_bytes_total") + metric(text, "nebulaio_s3_sent_bytes_total"),
    };
    if (last) {
      const seconds = (now.time - last.time) / 1000;
      const count = now.count - last.count;
      rate.draw((now.requests - last.requests) / seconds);
      latency.draw(count ? (1000 * (now.seconds - last.seconds)) / count : 0);
      throughput.draw((now.bytes - last.bytes) / seconds);
    }
    last = now;
  };
  await Promise.all([sample(), showRepair().catch((e) => repair.replaceChildren(h("p", { class: "muted" }, e.message))),
    showScrub().catch((e) => scrub.replaceChildren(h("p", { class: "muted" }, e.message))),
    showDrains().catch((e) => { error.textContent = e.message; })]);
  state.timers.push(setInterval(() => Promise.all([sample(), showRepair(), showScrub(), showDrains()]).catch(() => {}), CHART_INTERVAL_MS));
}

// --- the key store (SSE-KMS) ----------------------------------------------------------------

async function keysPage() {
  const error = errorBox();
  const keys = listOf(await api("GET", "/api/v1/kms/keys"), "keys");
  const enc = encodeURIComponent;
  const change = (label, call, cls = "") => h("button", { class: cls, type: "button",
    onclick: () => call().then(route, (e) => { error.textContent = e.message; }) }, label);
  show(h("h1", {}, "Encryption keys"), error,
    h("section", { class: "card", "aria-label": "Key store" },
      h("p", { class: "muted" }, "Keys that aws:kms requests name by id or ARN. Their material is never shown;"
        + " a disabled key refuses new objects and reads of the objects it sealed."),
      inlineForm("Create key", [["description", "description"]], (v) => api("POST", "/api/v1/kms/keys", v).then(route), error),
      table([["Key"], ["Description"], ["Created"], ["Versions"], ["State"], [""]], keys.map((k) => h("tr", {},
        h("td", {}, h("code", {}, k.id)), h("td", {}, k.description), h("td", {}, k.created),
        h("td", {}, String(k.versions), k.rotated ? ` (rotated ${k.rotated})` : ""),
        h("td", {}, k.enabled ? "enabled" : "disabled"),
        h("td", {}, h("div", { class: "row" },
          change(k.enabled ? "Disable" : "Enable", () => api("PATCH", `/api/v1/kms/keys/${enc(k.id)}`, { enabled: !k.enabled }),
            k.enabled ? "danger" : ""),
          change("Rotate", () => api("POST", `/api/v1/kms/keys/${enc(k.id)}/rotate`)))))))));
}

// --- notification targets -----------------------------------------------------------------

// The fields each kind of target takes beside its endpoint: [name, placeholder].
const TARGET_FIELDS = {
  webhook: [["secret", "signing secret (optional)"]],
  redis: [["key", "list or channel"], ["mode", "lpush or publish"], ["password", "password (optional)"]],
  nats: [["subject", "subject"], ["user", "user (optional)"], ["password", "password (optional)"]],
};

async function notifyPage() {
  const error = errorBox();
  const enc = encodeURIComponent;
  const body = h("div");
  const draw = async () => {
    const { targets } = await api("GET", "/api/v1/notify/targets");
    const rows = targets.map((t) => h("tr", {},
      h("td", { class: "key" }, t.id), h("td", {}, t.kind),
      h("td", { class: "wide key" }, t.endpoint + (t.key ? ` ${t.mode} ${t.key}` : "") + (t.subject ? ` ${t.subject}` : "")),
      h("td", { class: "key" }, h("code", {}, t.arn)),
      h("td", {}, String(t.backlog)), h("td", {}, String(t.delivered)), h("td", {}, String(t.failures)),
      h("td", {}, t.retrying ? `retrying: ${t.lastError}` : "ok"),
      h("td", {}, h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete target ${t.id} and the events queued for it?`)) return;
        try { await api("DELETE", `/api/v1/notify/targets/${enc(t.id)}`); await draw(); }
        catch (e) { error.textContent = `${e.code}: ${e.message}`; }
      } }, "Delete"))));
    body.replaceChildren(table([["Id"], ["Kind"], ["Endpoint", "wide"], ["ARN"], ["Backlog"], ["Delivered"],
      ["Failures"], ["State"], [""]], rows, "No targets yet."));
  };
  const kind = h("select", { "aria-label": "Kind" }, Object.keys(TARGET_FIELDS).map((k) => h("option", { value: k }, k)));
  const fields = h("div", { class: "row" });
  const drawFields = () => fields.replaceChildren(...TARGET_FIELDS[kind.value].map(([name, placeholder]) =>
    h("input", { name, placeholder, "aria-label": placeholder })));
  kind.addEventListener("change", drawFields);
  drawFields();
  const id = h("input", { placeholder: "id", "aria-label": "Target id", required: true });
  const endpoint = h("input", { placeholder: "http://host/path, redis://host:port or nats://host:port",
    "aria-label": "Endpoint", required: true });
  const form = h("form", { class: "card", "aria-label": "Define a target" }, h("h2", {}, "Define a target"),
    h("div", { class: "row" }, id, kind, endpoint), fields, h("button", { class: "primary", type: "submit" }, "Save target"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const definition = { kind: kind.value, endpoint: endpoint.value.trim() };
    for (const input of fields.querySelectorAll("input")) if (input.value.trim()) definition[input.name] = input.value.trim();
    try { await api("PUT", `/api/v1/notify/targets/${enc(id.value.trim())}`, definition); error.textContent = ""; await draw(); }
    catch (e) { error.textContent = `${e.code}: ${e.message}`; }
  });
  show(h("h1", {}, "Notifications"),
    h("p", { class: "muted" }, "Where buckets' events go. A bucket's notification settings name a target by its ARN; " +
      "the raft leader delivers, so its figures are the ones that move."),
    error, h("section", { class: "card", "aria-label": "Targets" }, h("h2", {}, "Targets"), body), form);
  await draw();
  state.timers.push(setInterval(() => draw().catch(() => {}), CHART_INTERVAL_MS));
}

// --- routing ------------------------------------------------------------------------------

let keyHandler = null;
document.addEventListener("keydown", (event) => {
  if (keyHandler && !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName)) keyHandler(event);
});

const ROUTES = [
  [/^#\/buckets$/, () => bucketsPage()],
  [/^#\/settings\/([^/]+)$/, (m) => settingsPage(decodeURIComponent(m[1]))],
  [/^#\/browse\/([^/]+)\/(.*)$/, (m) => browsePage(decodeURIComponent(m[1]), m[2].split("/").map(decodeURIComponent).join("/"))],
  [/^#\/object\/([^/]+)\/(.+)$/, (m) => objectPage(decodeURIComponent(m[1]), m[2].split("/").map(decodeURIComponent).join("/"))],
  [/^#\/iam$/, () => iamPage(), true],
  [/^#\/cluster$/, () => clusterPage(), true],
  [/^#\/keys$/, () => keysPage(), true],
  [/^#\/notify$/, () => notifyPage(), true],
];

async function route() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  keyHandler = null;
  if (!state.user) {
    try { setSession(await api("GET", "/session")); } catch { return loginPage(); }
  }
  const hash = location.hash || "#/buckets";
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", hash.startsWith(`#/${link.dataset.page}`) ||
      (link.dataset.page === "buckets" && /^#\/(browse|object|settings)/.test(hash)));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  const match = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!match) { location.hash = "#/buckets"; return; }
  if (match[2] && !state.admin) {
    show(h("h1", {}, "Not allowed"), h("p", {}, "Your account has no administrator rights."));
    return;
  }
  try { await match[1](hash.match(match[0])); }
  catch (e) { if (state.user) show(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, `${e.code || ""} ${e.message}`)); }
}

document.getElementById("logout").addEventListener("click", async () => {
  await api("DELETE", "/session").catch(() => {});
  Object.assign(state, { user: null, admin: false, csrf: null });
  location.hash = "#/login";
  loginPage();
});
window.addEventListener("hashchange", route);
route();
