// entropi's page: the live view (server-sent events) and a call in moshi's protocol.
"use strict";
const RATE = 24000, FRAME = 1920;
const params = new URLSearchParams(location.search);
const tokenQuery = params.get("token") ? "token=" + encodeURIComponent(params.get("token")) : "";
const $ = (id) => document.getElementById(id);
const api = (path) => path + (tokenQuery ? "?" + tokenQuery : "");

// ------------------------------------------------------------------ what the browser has
// The call needs WebCodecs (Opus in and out) and a microphone; Safari before 26 and
// insecure origins (http off localhost) lack one or the other. Say so instead of failing.
function missingFeatures() {
  const missing = ["AudioEncoder", "AudioDecoder", "EncodedAudioChunk", "AudioData"]
    .filter((name) => !(name in window));
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia))
    missing.push("a microphone (the page must be served over https or from localhost)");
  return missing;
}

function checkSupport() {
  const missing = missingFeatures();
  if (!missing.length) return true;
  const el = $("support");
  el.textContent = "Talking from this browser is not possible: it lacks " + missing.join(", ") +
    ". Use a current Chrome, Edge or Firefox, or moshi's own client; the live view below " +
    "still works.";
  el.hidden = false;
  $("talk").disabled = true;
  return false;
}

// ------------------------------------------------------------------ live view
let windowStart = null, current = null;

function setState(state, win) {
  const el = $("state");
  el.textContent = state; el.className = "badge state-" + state;
  if (win !== undefined && win !== null) $("window").textContent = "window " + win;
  if (state === "live") { windowStart = performance.now(); current = null; }
  if (state !== "live") windowStart = null;
}

function clearView() {
  $("words").textContent = ""; $("events").textContent = ""; $("prompt").textContent = "–";
  current = null;
}

function userTurn(e) {
  const p = document.createElement("p"); p.className = "user";
  p.textContent = "you: " + (e.text ? e.text : `[spoke ${e.seconds} s]`);
  $("words").appendChild(p); p.scrollIntoView({ block: "end" });
  current = null;  // the agent's next words start a new paragraph
}

function words(text) {
  if (!current) {
    current = document.createElement("p");
    const tag = document.createElement("span"); tag.className = "tag";
    tag.textContent = $("window").textContent;
    current.appendChild(tag); current.appendChild(document.createTextNode(""));
    $("words").appendChild(current);
  }
  current.lastChild.textContent += text;
  current.scrollIntoView({ block: "end" });
}

function addEvent(text, cls) {
  const li = document.createElement("li");
  li.textContent = text; if (cls) li.className = cls;
  $("events").appendChild(li);
}

const handlers = {
  status: (e) => { setState(e.state || "starting", e.window);
                    if (e.last_prompt) $("prompt").textContent = e.last_prompt; },
  state: (e) => setState(e.state, e.window),
  text: (e) => words(e.text),
  user_text: (e) => userTurn(e),
  call_started: () => clearView(),  // a new caller starts with an empty view
  window_end: (e) => { addEvent(`window ${e.window} ended: ${e.end} after ${e.seconds} s`);
                       $("seconds").textContent = e.seconds.toFixed(1) + " s"; current = null; },
  handover: (e) => {
    addEvent(`compaction ${e.compaction_ms} ms` + (e.fallback ? `, fallback: ${e.fallback}` : ""),
             e.fallback ? "fallback" : "");
    if (e.prompt) $("prompt").textContent = e.prompt;
  },
  call_ended: (e) => addEvent(`call ended: ${e.reason}`),
};

const events = new EventSource(api("api/events"));
events.onmessage = (m) => { const e = JSON.parse(m.data); (handlers[e.type] || (() => {}))(e); };
setInterval(() => {
  if (windowStart !== null)
    $("seconds").textContent = ((performance.now() - windowStart) / 1000).toFixed(1) + " s";
}, 200);

// ------------------------------------------------------------------ voices
// The server's list: the user's own voices and PersonaPlex's presets (NATF0.pt …);
// ?voice_prompt= in the page's address picks one, like PersonaPlex's own page.
async function loadVoices() {
  const resp = await fetch(api("api/voices"));
  if (!resp.ok) return;
  const data = await resp.json(), select = $("voice");
  const wanted = params.get("voice_prompt") || data.default;
  for (const v of data.voices) {
    const opt = document.createElement("option");
    opt.value = v.name; opt.textContent = v.name + (v.preset ? " (preset)" : "");
    select.appendChild(opt);
  }
  select.value = [...select.options].some((o) => o.value === wanted) ? wanted : "";
}
const voicesLoaded = loadVoices().catch((e) => console.error("voices", e));

function chatQuery() {
  const q = new URLSearchParams();
  if (params.get("token")) q.set("token", params.get("token"));
  if ($("voice").value) q.set("voice_prompt", $("voice").value);
  if (params.get("text_prompt")) q.set("text_prompt", params.get("text_prompt"));
  const s = q.toString();
  return s ? "?" + s : "";
}

// ------------------------------------------------------------------ the call
let call = null;

async function startCall() {
  if (!checkSupport()) return;
  const ctx = new AudioContext({ sampleRate: RATE });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/api/chat` + chatQuery());
  ws.binaryType = "arraybuffer";
  const c = { ws, ctx, stop: () => {} };
  call = c;
  $("talk").textContent = "Hang up"; $("talk").classList.add("on");
  $("call").textContent = "connecting…";
  const demux = new Ogg.Demuxer();
  let playAt = 0, ts = 0;
  const decoder = new AudioDecoder({
    output: (data) => {
      const pcm = new Float32Array(data.numberOfFrames);
      data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
      const buf = ctx.createBuffer(1, pcm.length, data.sampleRate);
      buf.copyToChannel(pcm, 0); data.close();
      const src = ctx.createBufferSource(); src.buffer = buf; src.connect(ctx.destination);
      playAt = Math.max(playAt, ctx.currentTime + 0.05); src.start(playAt);
      playAt += buf.duration;
    },
    error: (e) => console.error("decoder", e),
  });
  decoder.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1 });
  ws.onmessage = (m) => {
    const b = new Uint8Array(m.data), kind = b[0], payload = b.subarray(1);
    if (kind === 0) { $("call").textContent = "connected"; startMic(c).catch(fail); }
    else if (kind === 1) {
      for (const pkt of demux.push(payload)) {
        if (Ogg.isHeader(pkt)) continue;
        decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: ts, data: pkt }));
        ts += 20000;
      }
    } else if (kind === 5) { $("call").textContent = "refused: " + new TextDecoder().decode(payload); }
  };
  ws.onclose = () => { if (!$("call").textContent.startsWith("refused"))
                         $("call").textContent = "not connected";
                       c.stop(); if (call === c) hangUpUi(); };
}

async function startMic(c) {
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
  const mux = new Ogg.Muxer(RATE);
  for (const page of mux.headers()) send(c.ws, page);
  let packets = [], samples = 0;
  const encoder = new AudioEncoder({
    output: (chunk) => {
      const pkt = new Uint8Array(chunk.byteLength); chunk.copyTo(pkt);
      packets.push(pkt); samples += Math.round(chunk.duration * 48000 / 1e6);
      if (samples >= 3840) { send(c.ws, mux.audio(packets, samples)); packets = []; samples = 0; }
    },
    error: (e) => console.error("encoder", e),
  });
  encoder.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1, bitrate: 32000 });
  const src = c.ctx.createMediaStreamSource(stream);
  const proc = c.ctx.createScriptProcessor(2048, 1, 1);
  const mute = c.ctx.createGain(); mute.gain.value = 0;
  let pending = new Float32Array(0), t = 0;
  proc.onaudioprocess = (ev) => {
    const input = ev.inputBuffer.getChannelData(0);
    const joined = new Float32Array(pending.length + input.length);
    joined.set(pending); joined.set(input, pending.length);
    let o = 0;
    for (; o + FRAME <= joined.length; o += FRAME) {
      encoder.encode(new AudioData({ format: "f32-planar", sampleRate: RATE, numberOfFrames: FRAME,
                                     numberOfChannels: 1, timestamp: t,
                                     data: joined.slice(o, o + FRAME) }));
      t += FRAME * 1e6 / RATE;
    }
    pending = joined.slice(o);
  };
  src.connect(proc); proc.connect(mute); mute.connect(c.ctx.destination);
  c.stop = () => { proc.disconnect(); stream.getTracks().forEach((tr) => tr.stop());
                   if (encoder.state !== "closed") encoder.close(); };
}

function send(ws, page) {
  if (ws.readyState !== WebSocket.OPEN) return;
  const msg = new Uint8Array(page.length + 1); msg[0] = 1; msg.set(page, 1); ws.send(msg);
}

function fail(e) { $("call").textContent = "error: " + e; console.error(e); }

function hangUpUi() { call = null; $("talk").textContent = "Talk"; $("talk").classList.remove("on"); }

$("talk").onclick = () => {
  if (call) { call.ws.close(); call.stop(); call.ctx.close(); hangUpUi(); }
  else startCall().catch(fail);
};
checkSupport();
if (params.get("autostart") === "1") voicesLoaded.then(() => startCall()).catch(fail);
