// agent_audio demo page: one RTCPeerConnection that receives the agent's track and sends the
// user's audio back (silence, the microphone or a bundled clip, mixed in WebAudio), small POSTs
// for the controls, and a poll of the server's turn stats, events and barge-in decisions. The
// "word_played" events make live captions; a turn's "turn_finished" replaces them by what was heard.
"use strict";

const $ = (id) => document.getElementById(id);
const LEVEL_MS = 10;        // how often the received level is measured
const KEEP_LEVELS = 12000;  // 2 minutes of levels for the page's own measurements
const POLL_MS = 100;        // captions follow the voice to within about this much, plus the network path
const RTP_EVERY = 3;        // polls per inbound-rtp stats read

// What the page measured, for anyone who wants it (the browser test reads it).
const agentAudio = (window.agentAudio = {
  session: null,
  levels: [],   // [performance.now() ms, received RMS dBFS]
  marks: [],    // [performance.now() ms, action] for every control clicked
  state: null,  // the server's last state
  rtp: null,    // the last inbound-rtp audio stats
  fadeOutMs: null,
  decisions: [],  // [performance.now() ms, "interrupt (speech_lasted), speech 512 ms"] as the page learned them
  vad: false,     // whether the server's barge-in policy listens to what the page sends
  // The caption of the last turn with words: [performance.now() ms, index, word, start_ms in the turn] as
  // each word started playing; heard: the turn's heard text once it finished (null before), partial: the cut word.
  captions: { turnId: null, words: [], heard: null, partial: null, interrupted: false },
});
const NO_VAD = "Microphone and Send user clip need the vad extra on the server: pip install 'agent_audio[vad]'";

let pc = null;
let after = 0;
let polls = 0;
let hasBackground = false;
let connected = false;
// What the page sends: a WebAudio graph into one MediaStreamDestination, silent unless a source plays.
let sendContext = null;
let destination = null;
let clip = null;        // the decoded user clip (AudioBuffer)
let clipPlaying = false;
let mic = null;         // { stream, source } while the microphone is on
// The level meter's colour for a level in dBFS: green for speech, amber near full scale, red when clipping is close.
const meterColour = (db) => (db > -3 ? "#c33" : db > -12 ? "#cc3" : "#3a3");

function log(text) {
  const item = document.createElement("li");
  item.textContent = text;
  $("log").append(item);
  $("log").scrollTop = $("log").scrollHeight;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const reply = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(reply.error || response.statusText);
  return reply;
}

function iceGathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
  });
}

async function connect() {
  $("connect").disabled = true;
  $("status").textContent = "connecting...";
  pc = new RTCPeerConnection();
  sendContext = new AudioContext();
  sendContext.resume();
  destination = sendContext.createMediaStreamDestination();
  pc.addTransceiver(destination.stream.getAudioTracks()[0], { direction: "sendrecv", streams: [destination.stream] });
  pc.addEventListener("track", (event) => listen(new MediaStream([event.track])));
  pc.addEventListener("connectionstatechange", () => {
    $("status").textContent = pc.connectionState;
    connected = pc.connectionState === "connected";
    setControls();
  });
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  try {
    const answer = await post("/offer", { sdp: pc.localDescription.sdp, type: pc.localDescription.type });
    agentAudio.session = answer.session;
    agentAudio.fadeOutMs = answer.fade_out_ms;
    $("text").disabled = !answer.tts;
    $("text").placeholder = answer.tts ? "type what the agent says (empty: bundled speech)" : $("text").placeholder;
    hasBackground = answer.background;
    agentAudio.vad = answer.vad;
    $("vad-note").textContent = answer.vad ? "" : NO_VAD;
    if (answer.vad) loadClip();
    for (const id of ["mic", "send-clip"]) if (!answer.vad) $(id).title = NO_VAD;
    $("background").checked = answer.background;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    setInterval(poll, POLL_MS);
  } catch (error) {
    $("status").textContent = `failed: ${error.message}`;
    $("connect").disabled = false;
  }
}

function listen(stream) {
  // Chromium feeds a remote stream to Web Audio only while a media element plays it.
  $("audio").srcObject = stream;
  const context = new AudioContext();
  context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;  // about 11 ms at 48 kHz: the level follows the voice closely
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const db = 10 * Math.log10(Math.max(sum / samples.length, 1e-12));
    agentAudio.levels.push([performance.now(), db]);
    if (agentAudio.levels.length > KEEP_LEVELS) agentAudio.levels.splice(0, 1000);
    $("meter-bar").style.width = `${Math.max(0, Math.min(100, (db + 60) * (100 / 60)))}%`;
    $("meter-bar").style.background = meterColour(db);
    $("meter-db").textContent = `received: ${db < -119 ? "-∞" : db.toFixed(1)} dBFS`;
  }, LEVEL_MS);
}

async function loadClip() {
  try {
    const response = await fetch("/user-clip.ogg");
    clip = await sendContext.decodeAudioData(await response.arrayBuffer());
    setControls();
  } catch (error) {
    log(`user clip: ${error.message}`);
  }
}

function sendClip() {
  if (!clip || clipPlaying) return;
  const source = sendContext.createBufferSource();
  source.buffer = clip;
  source.connect(destination);
  source.addEventListener("ended", () => {
    clipPlaying = false;
    setControls();
  });
  clipPlaying = true;
  agentAudio.marks.push([performance.now(), "send-clip"]);
  source.start();
  setControls();
}

async function toggleMic() {
  if (mic) {
    mic.source.disconnect();
    for (const track of mic.stream.getTracks()) track.stop();
    mic = null;
  } else {
    try {
      // Echo cancellation is required: the policy cannot tell the agent's own voice in the mic from yours.
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
      const source = sendContext.createMediaStreamSource(stream);
      source.connect(destination);
      mic = { stream, source };
    } catch (error) {
      log(`microphone: ${error.message}`);
    }
  }
  $("mic").classList.toggle("on", mic !== null);
  $("mic").textContent = mic ? "Microphone on" : "Microphone";
}

async function control(action, extra = {}) {
  agentAudio.marks.push([performance.now(), action]);
  try {
    show(await post(`/session/${agentAudio.session}/control`, { action, ...extra }));
  } catch (error) {
    log(`${action}: ${error.message}`);
  }
}

async function poll() {
  if (!agentAudio.session || pc.connectionState === "closed") return;
  const response = await fetch(`/session/${agentAudio.session}/state?after=${after}`);
  if (response.ok) show(await response.json());
  if (polls++ % RTP_EVERY) return;
  for (const report of (await pc.getStats()).values()) {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      agentAudio.rtp = report;
      $("rtp").textContent = `inbound RTP: ${report.packetsReceived} packets, ` +
        `${(report.totalSamplesDuration ?? 0).toFixed(1)} s of audio, ${report.packetsLost} lost, ` +
        `jitter ${(report.jitter * 1000).toFixed(1)} ms`;
    }
  }
}

function show(state) {
  agentAudio.state = state;
  for (const event of state.events) {
    if (event.seq <= after) continue;
    after = event.seq;
    if (event.name === "word_played") {
      captionWord(event);
      continue;  // shown as captions, not in the log
    }
    if (event.name === "decision") agentAudio.decisions.push([performance.now(), event.detail]);
    const turn = event.turn_id === null ? "" : ` turn ${event.turn_id}`;
    let detail = event.detail;
    if (event.name === "turn_finished" && event.stats) {
      captionHeard(event.turn_id, event.stats);
      if (event.stats.heard_text) detail += `, heard "${event.stats.heard_text}"`;
    }
    log(`${event.t.toFixed(2)} s  ${event.name}${turn}  ${detail}`);
  }
  const turn = state.turn;
  const ms = (value) => (value === null || value === undefined ? "-" : `${Math.round(value)} ms`);
  const queued = state.queued_turns ? ` (+${state.queued_turns} queued)` : "";
  $("s-turn").textContent = turn ? `${turn.turn_id}${turn.finished ? " (finished)" : ""}${queued}` : "-";
  $("s-pushed").textContent = ms(turn?.pushed_ms);
  $("s-played").textContent = ms(turn?.played_ms);
  $("s-dropped").textContent = ms(turn?.dropped_ms);
  $("s-interrupted").textContent = turn ? (turn.interrupted ? "yes" : "no") : "-";
  $("s-ttfa").textContent = ms(turn?.ttfa_ms);
  $("background").checked = state.background;
  const voice = state.paused ? "paused" : state.speaking ? "speaking" : "quiet";
  $("voice").textContent = voice;
  $("voice").className = voice;
  const last = state.barge_in?.last;
  $("policy").textContent = last ? `policy: ${last.action} (${last.reason})` : "policy: -";
  $("policy").className = last ? last.action : "";
  setControls();
}

// Live captions: each word as playout passes its start; when the turn finishes, what the listener heard.
function captionWord(event) {
  const c = agentAudio.captions;
  if (event.turn_id !== c.turnId) Object.assign(c, { turnId: event.turn_id, words: [], heard: null, partial: null });
  if (c.heard !== null) return;
  c.words.push([performance.now(), event.index, event.detail, event.start_ms]);
  renderCaptions();
}

function captionHeard(turnId, stats) {
  const c = agentAudio.captions;
  if (turnId !== c.turnId) {
    if (!stats.heard_text) return;  // no words reached playout: keep the last caption
    Object.assign(c, { turnId, words: [] });
  }
  Object.assign(c, { heard: stats.heard_text, partial: stats.partial_word, interrupted: stats.interrupted });
  renderCaptions();
}

function renderCaptions() {
  const c = agentAudio.captions;
  const box = $("captions");
  box.textContent = "";
  if (c.heard === null) {
    box.textContent = c.words.map((w) => w[2]).join(" ");
    box.className = "live";
    return;
  }
  box.className = "done";
  box.append(c.heard);
  if (!c.interrupted) return;
  if (c.partial && !c.partial.heard) {  // under 20 % of it played: not heard, shown struck out
    const cut = document.createElement("span");
    cut.className = "cut";
    cut.title = `${Math.round(c.partial.fraction * 100)} % played before the fade`;
    cut.textContent = ` ${c.partial.text}`;
    box.append(cut);
  }
  const mark = document.createElement("span");
  mark.className = "mark";
  mark.textContent = " [interrupted]";
  box.append(mark);
}

// Speak and the background while connected; pause, resume and interrupt only when they would do something.
function setControls() {
  const can = (connected && agentAudio.state?.controls) || {};
  $("speak").disabled = !connected;
  for (const id of ["pause", "resume", "interrupt"]) $(id).disabled = !can[id];
  $("background").disabled = !(connected && hasBackground);
  $("mic").disabled = !(connected && agentAudio.vad);
  $("send-clip").disabled = !(connected && agentAudio.vad && clip) || clipPlaying;
}

$("connect").addEventListener("click", connect);
$("speak").addEventListener("click", () => {
  const text = $("text").value.trim();
  control("speak", text ? { text } : {});
});
$("pause").addEventListener("click", () => control("pause"));
$("resume").addEventListener("click", () => control("resume"));
$("interrupt").addEventListener("click", () => control("interrupt"));
$("mic").addEventListener("click", toggleMic);
$("send-clip").addEventListener("click", sendClip);
$("background").addEventListener("change", () => control("background", { on: $("background").checked }));
window.addEventListener("pagehide", () => {
  if (agentAudio.session) navigator.sendBeacon(`/session/${agentAudio.session}/close`);
  if (pc) pc.close();
});
