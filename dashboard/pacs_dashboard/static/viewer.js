// The study viewer's glue (templates/viewer.html): dwv reads and draws the images; this file picks the copy,
// lists the series through DICOMweb (QIDO-RS), hands dwv the instances' WADO-RS addresses and wires the
// tool buttons and the image slider. No drawing or decoding happens here.
import { App, AppOptions, Index, ToolConfig, ViewConfig } from "dwv";

// dwv took the page's base address (the folder of its files, where its decoder workers are) when it was
// imported, above; from here on the page's own address is the base again, so "#main" and the like stay on it.
document.querySelector("base")?.remove();

const root = document.getElementById("viewer");
const study = root.dataset.study;
// Every instance as stored (transfer-syntax=*): dwv decodes JPEG (baseline, extended, lossless), JPEG 2000 and
// RLE in its workers (not JPEG-LS: the page says so).
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const TAG = {
  series: "0020000E", seriesNumber: "00200011", modality: "00080060", seriesDescription: "0008103E",
  seriesImages: "00201209", sop: "00080018", instanceNumber: "00200013",
};
// Slices with positions that dwv stacks into a volume; other series (radiographs, ultrasound...) are shown one
// instance at a time, the slider stepping through them (dwv would draw projections at one position as one).
const VOLUME = new Set(["CT", "MR", "PT", "NM"]);
// Every request says it comes from the page: a session that ended is answered 401 without a browser login box
// (whose password the browser would then send with every request until it is closed).
const PAGE = { name: "X-Requested-With", value: "pacs-dashboard" };
const LOAD = { requestHeaders: [{ name: "Accept", value: ACCEPT }, PAGE], batchSize: 4 };
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const message = document.getElementById("viewer-message");
const shown = document.getElementById("shown-copy");
const slider = document.getElementById("frame-slider");
const frameNumber = document.getElementById("frame-number");
const toolButtons = [...root.querySelectorAll("button[data-tool]")];
const resetButton = document.getElementById("viewer-reset");
let base = "";
let seriesList = [];
let current = -1;
let tool = "WindowLevel";
let urls = [];
let perInstance = false;
let instanceAt = 0;

function say(text) {
  message.textContent = text;
}

function value(item, tag) {
  const found = item && item[tag];
  const v = found && Array.isArray(found.Value) ? found.Value[0] : undefined;
  return v === undefined || v === null ? "" : v;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) { /* not JSON: the status says enough */ }
  if (resp.status === 401) return "you are no longer logged in: reload the page to log in again.";
  return resp.status === 404 ? "this copy does not hold the study." : `the copy answered ${resp.status}.`;
}

async function getJson(url) {
  const headers = { Accept: "application/dicom+json, application/json", [PAGE.name]: PAGE.value };
  const resp = await fetch(url, { headers, credentials: "same-origin" });
  if (resp.status === 204) return [];
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

// "3 Dec 2026 02:00" in the clinic's time zone.
function when(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const parts = {};
  const fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: root.dataset.tz || undefined, day: "numeric", month: "numeric", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  for (const p of fmt.formatToParts(at)) parts[p.type] = p.value;
  return `${Number(parts.day)} ${MONTHS[Number(parts.month) - 1]} ${parts.year} ${parts.hour}:${parts.minute}`;
}

function kindOf(name) {
  if (name === "pacs" || name === "bucket" || name === "cloud-pacs") return name;
  if (name.startsWith("drive-")) return "drive";
  return "offsite";
}

function copyWords(doc, name) {
  const kind = doc ? doc.kind : kindOf(name);
  if (kind === "pacs") return "the copy in the PACS";
  if (kind === "bucket") return "the copy in the bucket";
  if (kind === "cloud-pacs") return "the copy in the cloud PACS";
  if (kind === "drive") return doc && doc.label ? `the copy on ${doc.label}` : "the copy on the backup drive";
  if (doc && doc.taken_at) return `the offsite snapshot of ${when(doc.taken_at)}`;
  return name === "offsite" ? "the newest offsite snapshot" : `the offsite snapshot ${name}`;
}

// A snapshot's entry names its time in the clinic's time zone, as the sentence above the image does:
// "Offsite copy, snapshot of 7 Dec 2026 00:19 (newest)"; other copies keep their label.
function pickerLabel(doc) {
  const label = doc.label || doc.name;
  if (!doc.taken_at) return label;
  const copy = label.split(/[,(]/)[0].trim();
  return `${copy}, snapshot of ${when(doc.taken_at)}${doc.name.includes("-") ? "" : " (newest)"}`;
}

async function listSources() {
  const url = root.dataset.copies;
  if (!url) return [];
  try {
    const headers = { Accept: "application/json", [PAGE.name]: PAGE.value };
    const resp = await fetch(`${url}?study=${encodeURIComponent(study)}`, { headers });
    if (!resp.ok) return [];
    const found = await resp.json();
    return Array.isArray(found) ? found : (found && Array.isArray(found.sources) ? found.sources : []);
  } catch (_) {
    return [];
  }
}

function pick(sources) {
  const usable = sources.filter((s) => s.available);
  const named = (n) => usable.find((s) => s.name === n);
  const offsite = usable.filter((s) => s.kind === "offsite")
    .sort((a, b) => String(b.taken_at || "").localeCompare(String(a.taken_at || "")));
  const doc = named("pacs") || named("bucket") || named("offsite") || offsite[0] || usable[0];
  return doc ? doc.name : "";
}

function showPicker(sources, chosen) {
  const list = document.getElementById("view-from-list");
  if (!list) return;
  if (!list.children.length) {
    for (const s of sources) {
      const li = document.createElement("li");
      if (s.available) {
        const a = document.createElement("a");
        a.href = `${location.pathname}?from=${encodeURIComponent(s.name)}`;  // absolute: the page has a <base>
        a.dataset.source = s.name;
        a.textContent = pickerLabel(s);
        li.appendChild(a);
      } else {
        const span = document.createElement("span");
        span.className = "muted";
        span.textContent = `${s.label || s.name} (not available: ${s.reason || "it cannot be read now"})`;
        li.appendChild(span);
      }
      list.appendChild(li);
    }
  }
  for (const a of list.querySelectorAll("a[data-source]")) {
    if (a.dataset.source === chosen) a.setAttribute("aria-current", "true");
  }
  document.getElementById("view-from").hidden = !list.children.length;
}

// dwv: one layer group, the tools of the toolbar (Draw with the ruler only: lengths in mm from Pixel Spacing).
const app = new App();
const options = new AppOptions({ "*": [new ViewConfig("layerGroup0")] });
options.tools = {
  Scroll: new ToolConfig(), WindowLevel: new ToolConfig(), ZoomAndPan: new ToolConfig(), Draw: new ToolConfig(["Ruler"]),
};
app.init(options);

function viewController() {
  const group = app.getActiveLayerGroup();
  const layer = group ? group.getActiveViewLayer() : undefined;
  return layer ? layer.getViewController() : undefined;
}

function setTool(name) {
  tool = name;
  app.setTool(name);
  if (name === "Draw") app.setToolFeatures({ shapeName: "Ruler" });
  for (const b of toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === name));
}

function showInstance(index) {
  instanceAt = index;
  root.dataset.state = "loading";
  app.abortAllLoads();
  app.reset();
  app.loadURLs([urls[index]], LOAD);
}

function syncSlider() {
  let count = urls.length;
  let at = instanceAt + 1;
  const vc = viewController();
  if (!perInstance) {
    if (!vc) return;
    const dim = vc.getScrollDimIndex();
    count = vc.getImageSize().get(dim) || 1;
    at = vc.getCurrentIndex().get(dim) + 1;
  }
  slider.max = String(count);
  slider.value = String(at);
  slider.disabled = count < 2;
  frameNumber.textContent = `${at} of ${count}`;
}

// One instance at a time: the label follows the slider, the image is read once it is let go (or a key moved it).
slider.addEventListener("change", () => {
  if (perInstance && Number(slider.value) - 1 !== instanceAt) showInstance(Number(slider.value) - 1);
});
slider.addEventListener("input", () => {
  if (perInstance) {
    frameNumber.textContent = `${slider.value} of ${urls.length}`;
    return;
  }
  const vc = viewController();
  if (!vc) return;
  const dim = vc.getScrollDimIndex();
  const values = vc.getCurrentIndex().getValues();
  values[dim] = Number(slider.value) - 1;
  vc.setCurrentIndex(new Index(values));
  syncSlider();
});
for (const b of toolButtons) b.addEventListener("click", () => setTool(b.dataset.tool));
resetButton.addEventListener("click", () => {
  app.resetDisplay();
  syncSlider();
});
window.addEventListener("resize", () => app.onResize());

app.addEventListener("loadprogress", (event) => {
  if (typeof event.loaded === "number") say(`Reading the images… ${Math.round(event.loaded)}%`);
});
app.addEventListener("load", () => {
  for (const b of [...toolButtons, resetButton]) b.disabled = false;
  setTool(tool);
  syncSlider();
  say("");
  root.dataset.state = "shown";
  // Milliseconds from the page's navigation to the first image on screen (for benchmarks).
  if (!root.dataset.firstImageMs) root.dataset.firstImageMs = String(Math.round(performance.now()));
});
app.addEventListener("positionchange", syncSlider);
app.addEventListener("error", (event) => {
  console.error("viewer: dwv could not load", event && (event.error || event));
  root.dataset.state = "failed";
  const text = event && event.error && event.error.message ? String(event.error.message) : "";
  if (/transfer syntax/i.test(text)) {
    say(`This image is stored in a form the viewer cannot draw (${text}). Download the study, or open it in a ` +
      "desktop DICOM viewer through this copy's DICOMweb address.");
    return;
  }
  say(`The images could not be read from this copy${text ? ` (${text})` : ""}. Try another copy, or reload the page.`);
});

async function loadSeries(index) {
  const s = seriesList[index];
  if (!s || index === current) return;
  current = index;
  for (const b of document.querySelectorAll("#series-list button")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.index) === index));
  }
  root.dataset.state = "loading";
  say("Reading the images…");
  let instances;
  try {
    instances = await getJson(`${base}/studies/${study}/series/${s.uid}/instances`);
  } catch (err) {
    root.dataset.state = "failed";
    say(`The images of this series could not be listed: ${err.message}`);
    return;
  }
  instances.sort((a, b) => Number(value(a, TAG.instanceNumber) || 0) - Number(value(b, TAG.instanceNumber) || 0));
  urls = instances.map((i) => `${base}/studies/${study}/series/${s.uid}/instances/${value(i, TAG.sop)}`);
  s.first = urls[0];
  perInstance = urls.length > 1 && !VOLUME.has(s.modality);
  if (perInstance) {
    showInstance(0);
    return;
  }
  instanceAt = 0;
  app.abortAllLoads();
  app.reset();
  app.loadURLs(urls, LOAD);
}

function seriesItem(s, index) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.className = "series-button";
  b.dataset.index = String(index);
  b.setAttribute("aria-pressed", "false");
  const img = document.createElement("img");
  img.alt = "";
  img.hidden = true;
  img.className = "series-thumb";
  img.addEventListener("load", () => { img.hidden = false; });
  const text = document.createElement("span");
  const images = s.images ? ` · ${s.images} image${s.images === 1 ? "" : "s"}` : "";
  text.textContent = `Series ${s.number || index + 1}${s.modality ? " · " + s.modality : ""}${images}` +
    (s.description ? ` · ${s.description}` : "");
  b.append(img, text);
  b.addEventListener("click", () => loadSeries(index));
  li.appendChild(b);
  return li;
}

// Small pictures of each series (the copy's rendered first image), asked once the first image is on screen.
async function thumbnails() {
  const items = document.querySelectorAll("#series-list img.series-thumb");
  for (const [index, s] of seriesList.entries()) {
    if (index >= 24) break;
    try {
      let first = s.first;
      if (!first) {
        const found = await getJson(`${base}/studies/${study}/series/${s.uid}/instances?limit=1`);
        if (!found.length) continue;
        first = `${base}/studies/${study}/series/${s.uid}/instances/${value(found[0], TAG.sop)}`;
      }
      items[index].src = `${first}/rendered?viewport=96,96`;
    } catch (_) { /* no picture: the series' words stay */ }
  }
}

async function start() {
  // The copies holding the study fill the "View from" list; when the address names the copy already, its
  // images are asked at the same time instead of after that list (which may ask offsite servers).
  const listing = listSources();
  const chosen = root.dataset.source || pick(await listing) || root.dataset.defaultSource;
  const named = (listed) => {
    if (root.dataset.share !== "yes") showPicker(listed, chosen);
    if (!root.dataset.shown) {
      const doc = listed.find((s) => s.name === chosen);
      shown.textContent = `You are looking at ${copyWords(doc, chosen)}.`;
    }
  };
  named([]);
  listing.then(named);
  root.dataset.shownSource = chosen;
  base = root.dataset.dicomweb.replace("{source}", encodeURIComponent(chosen));
  let series;
  try {
    series = await getJson(`${base}/studies/${study}/series`);
  } catch (err) {
    root.dataset.state = "failed";
    shown.textContent = "Nothing is on screen.";
    say(`This copy cannot be shown: ${err.message}`);
    return;
  }
  seriesList = series.map((s) => ({
    uid: value(s, TAG.series), number: Number(value(s, TAG.seriesNumber)) || 0, modality: value(s, TAG.modality),
    description: value(s, TAG.seriesDescription), images: Number(value(s, TAG.seriesImages)) || 0,
  })).filter((s) => s.uid).sort((a, b) => a.number - b.number);
  if (!seriesList.length) {
    root.dataset.state = "failed";
    say("This copy holds no series of this study.");
    return;
  }
  const list = document.getElementById("series-list");
  seriesList.forEach((s, i) => list.appendChild(seriesItem(s, i)));
  let asked = false;
  app.addEventListener("load", () => {
    if (!asked) thumbnails();
    asked = true;
  });
  loadSeries(0);
}

start();
