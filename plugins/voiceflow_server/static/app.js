// voiceflow's page: no build step, no CDN. Text from the server is always set as text
// (textContent), never as HTML, so a transcript that holds markup stays harmless.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function authHeaders() {
  const key = sessionStorage.getItem("voiceflow-key");
  return key ? { Authorization: "Bearer " + key } : {};
}

async function call(url, options = {}) {
  const response = await fetch(url, {
    ...options,
    headers: { ...authHeaders(), ...(options.headers || {}) },
  });
  if (response.status === 401) {
    $("key-box").hidden = false;
    throw new Error("this server needs an API key: enter it at the top");
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      message = (await response.json()).error.message;
    } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

// Server-sent events read from a fetch response (EventSource cannot POST a recording).
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data: ")) yield JSON.parse(line.slice(6));
      }
    }
  }
}

function mmss(seconds) {
  const s = Math.floor(seconds);
  return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
}

function play(url) {
  const player = $("player");
  player.hidden = false;
  player.src = url; // "#t=start,end": the browser plays just that span
  player.play().catch(() => { /* the controls are there to press */ });
}

function answerBlock(answer) {
  const box = el("div", null, "answer");
  box.append(el("p", answer.text));
  for (const c of answer.citations || []) {
    const button = el("button", c.label + ": " + c.text, "cite");
    button.type = "button";
    button.dataset.url = c.url;
    button.addEventListener("click", () => play(c.url));
    box.append(button);
    if (c.english) box.append(el("div", "English: " + c.english, "muted"));
  }
  return box;
}

function resultItem(r) {
  const li = el("li");
  li.dataset.type = r.type;
  if (r.type === "Transcript") {
    li.append(el("span", r.language || "text", "lang"), el("span", r.text));
    if (r.translation) li.append(el("div", "English: " + r.translation, "muted"));
  } else if (r.type === "Command") {
    li.append(el("span", r.intent, "lang"));
    li.append(el("span", Object.values(r.args)[0] || ""));
    li.append(el("div", "heard: " + r.transcript.text, "muted"));
  } else if (r.type === "ImageResult") {
    li.append(el("span", "painted: " + r.prompt));
    const img = el("img");
    img.alt = r.prompt;
    img.src = r.url;
    li.append(img);
  } else if (r.type === "Answer") {
    li.append(answerBlock(r));
  } else if (r.type === "Failure") {
    li.className = "failure";
    li.textContent = r.node + ": " + r.error;
  } else if (r.type === "error") {
    li.className = "failure";
    li.textContent = r.error;
  }
  return li;
}

function setState(state) {
  $("state").textContent = state;
  $("state").className = "state " + state;
}

async function runGraph(form) {
  setState("transcribing");
  try {
    const response = await call("/api/run", { method: "POST", body: form });
    for await (const r of events(response)) {
      if (r.type === "done") break;
      $("results").prepend(resultItem(r));
    }
  } catch (e) {
    $("results").prepend(resultItem({ type: "error", error: e.message }));
  }
  setState("idle");
}

let recorder = null;

async function toggleRecording() {
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    setState("no microphone: " + e.message);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((t) => t.stop());
    recorder = null;
    $("record").textContent = "Record";
    const blob = new Blob(chunks, { type: chunks.length ? chunks[0].type : "audio/webm" });
    const form = new FormData();
    form.append("file", blob, "speech.webm");
    runGraph(form);
  });
  recorder.start();
  $("record").textContent = "Stop";
  setState("listening");
}

function subtitles(segments, kind) {
  const stamp = (t) => {
    const ms = Math.round(t * 1000);
    const h = String(Math.floor(ms / 3600000)).padStart(2, "0");
    const m = String(Math.floor(ms / 60000) % 60).padStart(2, "0");
    const s = String(Math.floor(ms / 1000) % 60).padStart(2, "0");
    const rest = String(ms % 1000).padStart(3, "0");
    return h + ":" + m + ":" + s + (kind === "srt" ? "," : ".") + rest;
  };
  const cues = segments.map((s, i) =>
    (kind === "srt" ? i + 1 + "\n" : "") + stamp(s.start) + " --> " + stamp(s.end) + "\n" + s.text.trim());
  return (kind === "vtt" ? "WEBVTT\n\n" : "") + cues.join("\n\n") + "\n";
}

function download(text, name, label) {
  const a = el("a", label);
  a.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  a.download = name;
  return a;
}

async function transcribeFiles(event) {
  event.preventDefault();
  for (const file of $("files").files) {
    const li = el("li", file.name + ": transcribing...");
    $("transcripts").prepend(li);
    try {
      const form = new FormData();
      form.append("file", file);
      form.append("response_format", "verbose_json");
      const t = await (await call("/v1/audio/transcriptions", { method: "POST", body: form })).json();
      const code = (t.segments && t.segments[0] && t.segments[0].language) || t.language;
      const base = file.name.replace(/\.[^.]*$/, "");
      li.textContent = "";
      li.append(el("span", code, "lang"), el("span", t.text));
      const links = el("div");
      links.append(download(subtitles(t.segments, "srt"), base + "." + code + ".srt", "SRT"));
      links.append(" ");
      links.append(download(subtitles(t.segments, "vtt"), base + "." + code + ".vtt", "VTT"));
      li.append(links);
      if ($("translate").checked) {
        const form2 = new FormData();
        form2.append("file", file);
        const en = await (await call("/v1/audio/translations", { method: "POST", body: form2 })).json();
        li.append(el("div", "English: " + en.text, "muted translation"));
      }
    } catch (e) {
      li.textContent = file.name + ": " + e.message;
      li.className = "failure";
    }
  }
}

async function ask(event) {
  event.preventDefault();
  $("answer").textContent = "searching...";
  try {
    const response = await call("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: $("question").value }),
    });
    $("answer").textContent = "";
    $("answer").append(answerBlock(await response.json()));
  } catch (e) {
    $("answer").textContent = e.message;
  }
}

async function stats(event) {
  event.preventDefault();
  const chart = $("chart");
  chart.textContent = "";
  try {
    const url = "/api/stats?phrase=" + encodeURIComponent($("phrase").value);
    const s = await (await call(url)).json();
    $("stats-total").textContent = `"${s.phrase}": ${s.total} times`;
    const most = Math.max(1, ...s.recordings.map((r) => r.count));
    for (const r of s.recordings) {
      const row = el("div", null, "row");
      const bar = el("div", null, "bar");
      bar.style.width = (20 * r.count) / most + "rem";
      bar.title = r.times.map(mmss).join(", ");
      row.append(el("span", r.source, "name"), bar, el("span", String(r.count)));
      chart.append(row);
    }
  } catch (e) {
    $("stats-total").textContent = e.message;
  }
}

async function showGraph() {
  try {
    const g = await (await call("/api/graph")).json();
    const nodes = Object.entries(g.nodes).map(([n, s]) => n + " (" + s.type + ")");
    $("graph").textContent = "graph " + g.config.split("/").pop() + ": " + nodes.join(", ") +
      "; plugins: " + Object.keys(g.plugins).join(", ");
  } catch (e) {
    $("graph").textContent = e.message;
  }
}

$("record").addEventListener("click", toggleRecording);
$("type-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = new FormData();
  form.append("text", $("typed").value);
  runGraph(form);
});
$("upload-form").addEventListener("submit", transcribeFiles);
$("ask-form").addEventListener("submit", ask);
$("stats-form").addEventListener("submit", stats);
$("key").addEventListener("change", (e) => {
  sessionStorage.setItem("voiceflow-key", e.target.value);
  showGraph();
});
showGraph();
