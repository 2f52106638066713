// The front desk page: pictures go to the desk server, which pays for each call; this page
// holds no key. Frames are recognised every second (or on demand), faces are boxed with their
// names, a click on a face enrols it, and what the calls cost is shown beside them.

const FRAME_EVERY_MS = 1000;
const ARRIVAL_GAP_MS = 60_000;   // a person seen again within a minute is not a new arrival
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);

const state = {
  source: "camera",        // "camera" or "photo"
  busy: false,
  again: false,            // a recognition was asked for while one was running
  picture: 0,              // counts picture changes: an answer for an older picture is dropped
  lastFrame: null,         // {blob, canvas, faces} of the picture on screen
  lastSeen: new Map(),     // name -> time of the last arrival listed
  timings: [],             // seconds from frame captured to names drawn (read by the tests)
  enrolling: null,         // the face being enrolled
  cameraTimer: null,
};
window.desk = state;

// --- the desk's API ---------------------------------------------------------------------------
class DeskError extends Error {
  constructor(kind, message, hint) { super(message); this.kind = kind; this.hint = hint; }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers["X-Desk-Token"] = token;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch {
    throw new DeskError("desk_down", "The desk program does not answer.",
      "Start it again with `facemarket desk` and reload this page.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const e = body.error || {};
    throw new DeskError(e.kind || "failed", e.message || `HTTP ${response.status}`, e.hint);
  }
  return body;
}

const TITLES = {
  agent_down: "The face service's agent is down.",
  no_money: "The money has run out.",
  chain_down: "The chain does not answer.",
  camera_refused: "The camera is not available.",
};

function showMessage(kind, text, hint) {
  const box = $("message");
  box.hidden = false;
  box.dataset.kind = kind;
  box.className = kind === "info" ? "info" : "";
  box.textContent = [TITLES[kind], text, hint && `What to do: ${hint}`].filter(Boolean).join(" ");
}

function clearMessage(kinds) {
  const box = $("message");
  if (!kinds || kinds.includes(box.dataset.kind)) { box.hidden = true; box.dataset.kind = ""; }
}

function reportError(error) {
  if (error instanceof DeskError) showMessage(error.kind, error.message, error.hint);
  else showMessage("failed", String(error));
}

// --- pictures -----------------------------------------------------------------------------------
function grab() {
  // The picture on screen at full size, as a canvas (a camera frame or the photo).
  const source = state.source === "camera" ? $("camera") : $("photo");
  const width = source.videoWidth || source.naturalWidth, height = source.videoHeight || source.naturalHeight;
  if (!width || !height) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  canvas.getContext("2d").drawImage(source, 0, 0, width, height);
  return canvas;
}

const toJpeg = (canvas) => new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));

function crop(canvas, box, size = 96) {
  const small = document.createElement("canvas");
  small.width = size; small.height = size;
  small.getContext("2d").drawImage(canvas, box.x, box.y, box.w, box.h, 0, 0, size, size);
  return small;
}

// --- recognising -------------------------------------------------------------------------------
async function recognise() {
  if (state.enrolling) return;  // the face being named stays on screen
  if (state.busy) { state.again = true; return; }
  const captured = performance.now();
  const picture = state.picture;
  const canvas = grab();
  if (!canvas) return;
  state.busy = true;
  try {
    const blob = await toJpeg(canvas);
    const answer = await api("/api/recall", { method: "POST", body: blob,
                                              headers: { "Content-Type": "image/jpeg" } });
    if (picture !== state.picture) { state.again = true; return; }
    state.lastFrame = { blob, canvas, faces: answer.faces };
    drawBoxes(answer.faces, canvas.width, canvas.height);
    const seconds = (performance.now() - captured) / 1000;
    state.timings.push({ seconds, desk: answer.desk_seconds, faces: answer.faces.length,
                         width: canvas.width, height: canvas.height });
    $("timing").textContent = `${answer.faces.length} face(s), ${seconds.toFixed(2)} s`;
    clearMessage(["agent_down", "no_money", "chain_down", "desk_down", "failed"]);
    noteArrivals(answer.faces, canvas);
  } catch (error) {
    reportError(error);
  } finally {
    state.busy = false;
    refreshMoney();
    if (state.again) { state.again = false; setTimeout(recognise, 0); }
  }
}

function drawBoxes(faces, width, height) {
  const layer = $("boxes");
  layer.replaceChildren();
  faces.forEach((face, index) => {
    const div = document.createElement("div");
    div.className = face.name ? "face known" : "face unknown";
    div.dataset.index = index;
    div.dataset.name = face.name || "";
    Object.assign(div.style, {
      left: `${(100 * face.box.x) / width}%`, top: `${(100 * face.box.y) / height}%`,
      width: `${(100 * face.box.w) / width}%`, height: `${(100 * face.box.h) / height}%`,
    });
    const label = document.createElement("span");
    label.textContent = face.name || "unknown";
    div.append(label);
    div.addEventListener("click", () => startEnrol(index));
    layer.append(div);
  });
}

function noteArrivals(faces, canvas) {
  const now = Date.now();
  for (const face of faces) {
    if (!face.name || now - (state.lastSeen.get(face.name) || 0) < ARRIVAL_GAP_MS) continue;
    state.lastSeen.set(face.name, now);
    const item = document.createElement("li");
    const picture = document.createElement("img");
    picture.src = crop(canvas, face.box, 64).toDataURL("image/jpeg", 0.8);
    picture.alt = "";
    const name = document.createElement("b");
    name.textContent = face.name;
    const time = document.createElement("time");
    time.textContent = new Date(now).toLocaleTimeString();
    item.append(picture, name, time);
    $("arrivals").prepend(item);
  }
}

// --- enrolling and forgetting ------------------------------------------------------------------
function startEnrol(index) {
  const frame = state.lastFrame;
  if (!frame) return;
  const face = frame.faces[index];
  state.enrolling = { blob: frame.blob, box: face.box };
  const preview = $("enrol-face").getContext("2d");
  preview.drawImage(crop(frame.canvas, face.box), 0, 0);
  $("enrol-name").value = face.name || "";
  $("enrol").hidden = false;
  $("enrol-name").focus();
}

async function saveEnrol(event) {
  event.preventDefault();
  const { blob, box } = state.enrolling || {};
  const name = $("enrol-name").value.trim();
  if (!blob || !name) return;
  const query = new URLSearchParams({ name, x: box.x, y: box.y, w: box.w, h: box.h });
  try {
    await api(`/api/enrol?${query}`, { method: "POST", body: blob,
                                      headers: { "Content-Type": "image/jpeg" } });
    $("enrol").hidden = true;
    state.enrolling = null;
    showMessage("info", `${name} is enrolled.`);
    await refreshPeople();
    recognise();
  } catch (error) {
    reportError(error);
  }
}

async function refreshPeople() {
  try {
    const gallery = await api("/api/gallery");
    $("people").replaceChildren(...gallery.names.map(personItem));
  } catch (error) {
    reportError(error);
  }
}

function personItem({ name, faces }) {
  const item = document.createElement("li");
  item.dataset.name = name;
  const label = document.createElement("span");
  label.textContent = `${name} (${faces} photo${faces === 1 ? "" : "s"})`;
  const forget = document.createElement("button");
  forget.type = "button";
  forget.className = "forget";
  forget.textContent = "Forget";
  forget.addEventListener("click", () => {
    if (forget.dataset.confirming) return forgetPerson(name);
    forget.dataset.confirming = "yes";
    forget.textContent = `Really forget ${name}? Click again`;
    setTimeout(() => { delete forget.dataset.confirming; forget.textContent = "Forget"; }, 5000);
  });
  item.append(label, forget);
  return item;
}

async function forgetPerson(name) {
  try {
    await api("/api/forget", { method: "POST", body: JSON.stringify({ name }),
                               headers: { "Content-Type": "application/json" } });
    showMessage("info", `${name} is forgotten: their faces are gone from the gallery.`);
    state.lastSeen.delete(name);
    await refreshPeople();
  } catch (error) {
    reportError(error);
  }
}

// --- money ------------------------------------------------------------------------------------
async function refreshMoney() {
  try {
    const status = await api("/api/status");
    $("balance").textContent = status.balance_text;
    $("calls").textContent = status.calls_today;
    $("spent").textContent = status.spent_today_text;
    $("prepaid").textContent = status.prepaid;
    if (status.prepay_problem && status.prepaid === 0) {
      showMessage("no_money", status.prepay_problem,
        "add tokens to the desk's account (`facemarket token mint` by the token owner, or a transfer)");
    }
  } catch (error) {
    reportError(error);
  }
}

// --- camera and photos ------------------------------------------------------------------------
async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    showMessage("camera_refused", "This page cannot reach a camera here (it needs localhost or https).",
      "use “Use a photo…” or drop a photo on the picture, or open the desk at http://127.0.0.1.");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    $("camera").srcObject = stream;
    showCamera();
  } catch (error) {
    showMessage("camera_refused", `The browser said: ${error.name}.`,
      "allow the camera for this page (the camera icon in the address bar) and reload, " +
      "or use “Use a photo…” / drop a photo on the picture.");
  }
}

function showCamera() {
  state.source = "camera";
  state.picture += 1;
  $("photo").hidden = true;
  $("camera").hidden = false;
  $("back").hidden = true;
  clearInterval(state.cameraTimer);
  state.cameraTimer = setInterval(recognise, FRAME_EVERY_MS);
}

function showPhoto(file) {
  if (!file || !file.type.startsWith("image/")) {
    showMessage("failed", "That is not a photo.", "choose a JPEG or PNG picture.");
    return;
  }
  clearInterval(state.cameraTimer);
  state.source = "photo";
  state.picture += 1;
  const img = $("photo");
  img.onload = () => { URL.revokeObjectURL(img.src); recognise(); };
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  $("camera").hidden = true;
  $("back").hidden = !$("camera").srcObject;
  $("boxes").replaceChildren();
}

function wire() {
  $("now").addEventListener("click", recognise);
  $("upload").addEventListener("change", (e) => showPhoto(e.target.files[0]));
  $("back").addEventListener("click", showCamera);
  $("enrol").addEventListener("submit", saveEnrol);
  $("enrol-cancel").addEventListener("click", () => { $("enrol").hidden = true; state.enrolling = null; });
  const stage = $("stage");
  stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("dragging"); });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (e) => {
    e.preventDefault();
    stage.classList.remove("dragging");
    showPhoto(e.dataTransfer.files[0]);
  });
}

wire();
refreshMoney();
refreshPeople();
startCamera();
