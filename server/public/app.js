// posepool's page: upload a video (resumable: tus, so a dropped connection resumes where the server
// stopped), start a job from it, follow its progress, then play it back with the skeleton drawn over
// it (model.skeleton edges), scrubbable frame by frame, with each keypoint's confidence. Frames are
// drawn as they are posed (the job's `frames` events); with coaching angles, a plot of them over time
// follows the playhead, and a click on it seeks. No framework: the DOM, tus-js-client
// (/vendor/tus.min.js, the global `tus`), EventSource and canvases.

const $ = (id) => document.getElementById(id);
const form = $('upload-form');
const statusEl = $('status');
const progressEl = $('progress');
const video = $('video');
const canvas = $('overlay');
const scrub = $('scrub');
const frameLabel = $('frame-label');
const tbody = document.querySelector('#confidence tbody');
const plot = $('angles');
const legend = $('angles-legend');

/** Skeleton edges: a colour no keypoint uses, so a screenshot can tell the skeleton apart. */
const EDGE_COLOUR = '#ff00ff';
/** Keypoints below this confidence are drawn hollow and their edges dashed. */
const LOW_CONFIDENCE = 0.3;
/** One PATCH per chunk: small enough for proxies' body limits and the server's per-request time bound. */
const CHUNK_BYTES = 8 * 1024 * 1024;
/** Waits before each retry of a failed request; the count starts again once bytes get through. About 2 minutes in all. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];

let result = null;
let shown = -1;
let videoUrl = null;
/** While the job runs: the frames posed so far (drawn as they come), until the result replaces them. */
let live = null;

/** Each coaching angle's colour in the plot (summary.metrics names; stanceWidth is a ratio, plotted ×100). */
const ANGLE_COLOURS = {
  kneeFlexionLeft: '#1e88e5',
  kneeFlexionRight: '#43a047',
  hipToBoard: '#fb8c00',
  shoulderToBoard: '#8e24aa',
  torsoInclination: '#e53935',
  stanceWidth: '#00897b',
};

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function authHeaders() {
  const token = $('token').value.trim();
  return token ? { authorization: `Bearer ${token}` } : {};
}

function errorText(body, status) {
  const e = body?.error;
  return e ? `${e.code}: ${e.message}` : `HTTP ${status}`;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const file = $('video-file').files[0];
  if (!file) return;
  const fields = {};
  if ($('fps').value) fields.fps = $('fps').value;
  if ($('max-frames').value) fields.maxFrames = $('max-frames').value;
  if ($('metrics').checked) fields.metrics = true;
  $('upload').disabled = true;
  $('player').hidden = true;
  result = null;
  upload(file, fields);
});

/**
 * The upload, with the tus protocol: in chunks; when the connection drops, tus-js-client asks the
 * server how far it got (HEAD) and sends the rest from there. The same file picked again after a
 * failure or a reload resumes too (tus-js-client remembers its upload URL in localStorage).
 */
function upload(file, fields) {
  const up = new tus.Upload(file, {
    endpoint: '/api/uploads',
    chunkSize: CHUNK_BYTES,
    retryDelays: RETRY_DELAYS_MS,
    metadata: { filename: file.name, filetype: file.type },
    headers: authHeaders(),
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      progressEl.value = total ? sent / total : 0;
      setStatus('uploading', `Uploading ${file.name}: ${total ? Math.round((100 * sent) / total) : 0}%`);
    },
    // tus-js-client's own rule (retry anything but a 4xx other than 409 and 423), but also while the
    // browser says it is offline: a phone between cells comes back within the delays.
    onShouldRetry(err) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      const retry = status < 400 || status >= 500 || status === 409 || status === 423;
      if (retry) setStatus('resuming', `Connection lost, resuming ${file.name} from ${Math.round(100 * progressEl.value)}%…`);
      return retry;
    },
    onError(err) {
      const res = err.originalResponse;
      fail(
        res
          ? `the upload failed: HTTP ${res.getStatus()} ${res.getBody()}`.trim()
          : 'the upload failed (network error); pick the file again to resume',
      );
    },
    onSuccess() {
      startJob(up.url.split('/').pop(), fields, file);
    },
  });
  setStatus('uploading', `Uploading ${file.name}…`);
  up.findPreviousUploads().then((previous) => {
    if (previous.length) up.resumeFromPreviousUpload(previous[0]);
    up.start();
  });
}

/** The finished upload becomes a job: the same fields as the multipart form, as JSON. */
async function startJob(uploadId, fields, file) {
  setStatus('uploading', `Uploaded ${file.name}; starting the job…`);
  const res = await fetch('/api/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify({ uploadId, ...fields }),
  });
  const body = await res.json().catch(() => null);
  if (res.status !== 202) return fail(errorText(body, res.status));
  follow(body, file);
}

function showProgress(job) {
  const p = job.progress;
  progressEl.value = p.fraction;
  const what = job.state === 'queued' ? 'Waiting for a free slot' : 'Posing';
  setStatus(job.state, `${what}: ${p.done} / ${p.expected} frames`);
}

/** Server-sent events; with a token (EventSource cannot send headers) the job is polled instead. */
function follow(job, file) {
  showProgress(job);
  if ($('token').value.trim()) return poll(job, file);
  const events = new EventSource(`${job.links.events}?frames=true`);
  events.addEventListener('progress', (e) => showProgress(JSON.parse(e.data)));
  events.addEventListener('frames', (e) => showLive(job, file, JSON.parse(e.data)));
  events.addEventListener('done', () => {
    events.close();
    fetchJob(job, file);
  });
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) fail('lost the progress stream');
  };
}

async function poll(job, file) {
  for (;;) {
    const res = await fetch(job.links.self, { headers: authHeaders() });
    const body = await res.json();
    if (!res.ok) return fail(errorText(body, res.status));
    if (['succeeded', 'failed', 'cancelled'].includes(body.state)) return finish(body, file);
    showProgress(body);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function fetchJob(job, file) {
  const res = await fetch(job.links.self, { headers: authHeaders() });
  const body = await res.json();
  if (!res.ok) return fail(errorText(body, res.status));
  finish(body, file);
}

function finish(job, file) {
  $('upload').disabled = false;
  if (job.state !== 'succeeded') return fail(job.error ? `${job.error.code}: ${job.error.message}` : `job ${job.state}`);
  progressEl.value = 1;
  const s = job.result.summary;
  setStatus(
    'done',
    `Done: ${s.framesWithPose} of ${s.framesSampled} frames with a pose (${s.framesFailed} failed) in ${(s.elapsedMs / 1000).toFixed(1)} s, ${job.result.model.name} on ${job.result.model.device}`,
  );
  play(job.result, file);
}

function fail(message) {
  $('upload').disabled = false;
  setStatus('failed', message);
}

/** Frames as they are posed: the player opens on the first, and shows the latest (the video seeks to it). */
async function showLive(job, file, frames) {
  if (!live) {
    live = { frames: [], model: null, video: job.video, pending: true };
    const health = await fetch('/health')
      .then((r) => r.json())
      .catch(() => null);
    if (!health?.model || !live) return;
    live.model = health.model;
    open({ video: job.video, model: health.model, frames: live.frames }, file);
    canvas.dataset.live = 'true';
  }
  live.frames.push(...frames);
  if (!live.model) return;
  scrub.max = String(Math.max(0, live.frames.length - 1));
  const last = live.frames.length - 1;
  if (video.readyState >= 1) video.currentTime = live.frames[last].timeMs / 1000;
  draw(last);
}

function play(res, file) {
  live = null;
  delete canvas.dataset.live;
  open(res, file);
  plotAngles();
}

/** The player on a result (or the live frames, which grow). */
function open(res, file) {
  result = res;
  shown = -1;
  const { width, height } = res.video;
  canvas.width = width;
  canvas.height = height;
  video.style.aspectRatio = canvas.style.aspectRatio = `${width} / ${height}`;
  if (!video.src || video.dataset.file !== file.name) {
    if (videoUrl) URL.revokeObjectURL(videoUrl);
    videoUrl = URL.createObjectURL(file);
    video.src = videoUrl;
    video.dataset.file = file.name;
  }
  scrub.max = String(Math.max(0, res.frames.length - 1));
  scrub.value = '0';
  buildTable(res.model.keypoints);
  $('player').hidden = false;
  draw(0);
}

/** The sampled frame shown at `ms`: the last one at or before it. */
function frameAt(ms) {
  const frames = result.frames;
  if (frames.length === 0) return 0;
  let lo = 0;
  let hi = frames.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (frames[mid].timeMs <= ms + 1) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function buildTable(names) {
  tbody.replaceChildren(
    ...names.map((name) => {
      const tr = document.createElement('tr');
      tr.innerHTML = '<td></td><td></td><td></td><td class="conf"></td>';
      tr.cells[0].textContent = name;
      return tr;
    }),
  );
}

function confidenceColour(score) {
  return `hsl(${Math.round(120 * Math.max(0, Math.min(1, score)))}, 85%, 45%)`;
}

function draw(index) {
  if (!result?.frames.length) return;
  const frame = result.frames[index];
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const unit = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 160));
  for (const person of frame.persons) {
    const kp = person.keypoints;
    ctx.strokeStyle = EDGE_COLOUR;
    ctx.lineWidth = unit;
    ctx.lineCap = 'round';
    for (const [a, b] of result.model.skeleton) {
      if (!kp[a] || !kp[b]) continue;
      ctx.setLineDash(Math.min(kp[a][2], kp[b][2]) < LOW_CONFIDENCE ? [unit * 2, unit * 2] : []);
      ctx.beginPath();
      ctx.moveTo(kp[a][0], kp[a][1]);
      ctx.lineTo(kp[b][0], kp[b][1]);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    for (const [x, y, score] of kp) {
      ctx.beginPath();
      ctx.arc(x, y, unit * 1.6, 0, 2 * Math.PI);
      ctx.fillStyle = confidenceColour(score);
      ctx.strokeStyle = confidenceColour(score);
      if (score >= LOW_CONFIDENCE) ctx.fill();
      else ctx.stroke();
    }
  }
  shown = index;
  canvas.dataset.frame = String(index);
  canvas.dataset.persons = String(frame.persons.length);
  scrub.value = String(index);
  const err = frame.error ? `, error ${frame.error.code}` : '';
  frameLabel.textContent = `frame ${index + 1} / ${result.frames.length} at ${(frame.timeMs / 1000).toFixed(2)} s, ${frame.persons.length} person(s)${err}`;
  fillTable(frame.persons[0]);
  drawPlayhead();
}

/** The coaching angles over time (x: the video's time; y: degrees, stance width ×100), under the video. */
function plotAngles() {
  const ranges = result?.summary?.metrics;
  plot.hidden = legend.hidden = !ranges;
  if (!ranges) return;
  legend.replaceChildren(
    ...Object.keys(ANGLE_COLOURS).map((name) => {
      const s = document.createElement('span');
      s.style.setProperty('--c', ANGLE_COLOURS[name]);
      const r = ranges[name];
      s.textContent = r ? `${name} ${r.min}…${r.max} (mean ${r.mean})` : `${name}: not measured`;
      return s;
    }),
  );
  drawPlayhead();
}

/** Degrees to the plot's y (−180…180 at the edges; 0 in the middle). */
function plotY(value) {
  return plot.height / 2 - (value / 180) * (plot.height / 2 - 4);
}

function plotX(ms) {
  const end = Math.max(1, result.video.durationMs || result.frames.at(-1)?.timeMs || 1);
  return (ms / end) * plot.width;
}

function drawPlayhead() {
  if (plot.hidden || !result?.summary?.metrics) return;
  const ctx = plot.getContext('2d');
  ctx.clearRect(0, 0, plot.width, plot.height);
  ctx.strokeStyle = '#8888';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, plotY(0));
  ctx.lineTo(plot.width, plotY(0));
  ctx.stroke();
  for (const [name, colour] of Object.entries(ANGLE_COLOURS)) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    for (const f of result.frames) {
      const v = f.metrics?.[name];
      if (v === null || v === undefined) {
        drawing = false;
        continue;
      }
      const y = plotY(name === 'stanceWidth' ? v * 100 : v);
      if (drawing) ctx.lineTo(plotX(f.timeMs), y);
      else ctx.moveTo(plotX(f.timeMs), y);
      drawing = true;
    }
    ctx.stroke();
  }
  if (shown >= 0) {
    const x = plotX(result.frames[shown].timeMs);
    ctx.strokeStyle = '#ff00ff';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, plot.height);
    ctx.stroke();
  }
  plot.dataset.playhead = String(shown);
}

// A click on the plot seeks the video (and the skeleton) to that time.
plot.addEventListener('click', (e) => {
  if (!result) return;
  const box = plot.getBoundingClientRect();
  const end = Math.max(1, result.video.durationMs || result.frames.at(-1)?.timeMs || 1);
  const ms = ((e.clientX - box.left) / box.width) * end;
  video.pause();
  if (video.readyState >= 1) video.currentTime = ms / 1000;
  draw(frameAt(ms));
});

function fillTable(person) {
  [...tbody.rows].forEach((tr, i) => {
    const k = person?.keypoints[i];
    tr.cells[1].textContent = k ? k[0].toFixed(1) : '–';
    tr.cells[2].textContent = k ? k[1].toFixed(1) : '–';
    const cell = tr.cells[3];
    cell.replaceChildren();
    if (!k) return;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.round(k[2] * 60)}px`;
    bar.style.background = confidenceColour(k[2]);
    cell.append(bar, k[2].toFixed(2));
  });
}

// Scrubbing: the slider seeks the video to the frame's time and draws that frame.
scrub.addEventListener('input', () => {
  if (!result) return;
  const i = Number(scrub.value);
  video.pause();
  if (video.readyState >= 1) video.currentTime = result.frames[i].timeMs / 1000;
  draw(i);
});

// Playback and the video's own controls: follow its clock.
function followClock() {
  if (!result || live) return;
  const i = frameAt(video.currentTime * 1000);
  if (i !== shown) draw(i);
}
video.addEventListener('seeked', followClock);
video.addEventListener('timeupdate', followClock);
video.addEventListener('play', () => {
  const tick = () => {
    followClock();
    if (!video.paused && !video.ended) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
});
video.addEventListener('error', () => {
  frameLabel.textContent += ' (this browser cannot play the video; the slider still shows each frame)';
});
