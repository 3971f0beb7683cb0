/* Kelly: the companion web app's single page.
 *
 * A plain ES module with no framework and no build step: the server serves this file as-is.
 * Order: small helpers (DOM, API, busy and errors) → tabs → the V/A pad → Compose (the request,
 * then one render function per part of the result) → the piano roll (pure drawing) → Library →
 * Analyze → Models → Training (the form, one run's view and its loss curve, the list of runs, following
 * a run through Server-Sent Events) → Live (a running engine, followed through Server-Sent Events) → init.
 *
 * Top-level code only defines things. init() runs once the document exists, so Node can import
 * this module for a smoke check. Server data is only ever put into the page as text
 * (textContent, never innerHTML), so words from the library cannot become markup.
 */

// The Okabe–Ito palette (safe with the common colour-vision deficiencies), with its yellow and
// sky blue darkened enough to show as thin notes on the white roll.
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#B07C00', '#3F8FC0', '#5E4FA2', '#222222'];
const NETWORK_MESSAGE = 'Could not reach Kelly. Check that the app is still running, then try again.';
const MAX_UPLOAD = 8 * 1024 * 1024;

/** What the page is showing; one place, so that the views do not reach into each other. */
const state = {
  current: null,               // the CompositionView in the Compose result
  emotions: [],                // the thesaurus, for the journey picker and the pad's labels
  pad: { v: 0, a: 0.5, dragging: false },
  library: { items: [], stale: true, controller: null, timer: 0 },
  models: { list: [], loaded: false },
  // shown: the run in the view; running: the server's one running run, followed (source or poll)
  // whichever run is shown, so that Start comes back when it ends.
  training: { runs: [], shown: null, running: null, following: null, source: null, poll: 0, pollError: '' },
  // gen: bumped by Connect and Disconnect, so that a late answer to an older one is ignored.
  live: { connected: false, source: null, engine: null, trail: [], target: null, dragging: false, sending: false, again: false,
    gen: 0, retries: 0, retry: 0, probed: false, toggling: new Set(), modelRows: new Map() },
};

// --------------------------------------------------------------------------- DOM helpers
const $ = (sel, root = document) => root.querySelector(sel);
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
const round2 = (x) => Math.round(x * 100) / 100 + 0;   // + 0 turns -0 into 0 ("-0.00" reads as a bug)
const fmt = (x, digits = 2) => (typeof x === 'number' && Number.isFinite(x) ? round2(x).toFixed(digits) : '–');
const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

/** h('p', {class: 'x', onclick: fn}, 'text', child): an element; children are text or nodes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') for (const [p, val] of Object.entries(v)) el.style.setProperty(p, val);
    else if (k in el && typeof v !== 'string') el[k] = v;          // checked, disabled, value …
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** "tempo_bpm" → "Tempo bpm": parameter and rule names as a person reads them. */
const humanize = (key) => { const s = String(key).replace(/[_-]+/g, ' ').trim(); return s.charAt(0).toUpperCase() + s.slice(1); };

/** A value from the explanation, short and readable, whatever its type. */
export function formatValue(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.map(formatValue).join(', ');
  if (isObj(v)) return Object.entries(v).map(([k, x]) => `${k} ${formatValue(x)}`).join(', ');
  return String(v);
}

/** The library's date, whether the server sends ISO text or seconds since 1970. */
function formatDate(created) {
  if (created === null || created === undefined || created === '') return '';
  const d = typeof created === 'number' ? new Date(created < 1e12 ? created * 1000 : created) : new Date(created);
  return Number.isNaN(d.getTime()) ? String(created) : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// --------------------------------------------------------------------------- API
export class ApiError extends Error {
  constructor(message, status = 0) { super(message); this.name = 'ApiError'; this.status = status; }
}
/** Something the person can fix in the form, found before asking the server. */
class FormError extends ApiError {}

/** The sentence to show for a failed response: Kelly's error.message, else something honest. */
export function errorMessage(body, status) {
  const message = body && isObj(body.error) ? body.error.message : null;
  if (typeof message === 'string' && message.trim()) return message;
  // A route that bypasses Kelly's handler would answer FastAPI's {detail: …}.
  if (body && typeof body.detail === 'string') return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d && d.msg).filter(Boolean).join('; ');
  return `Kelly could not do that (HTTP ${status}).`;
}

/** fetch + JSON: resolves to the parsed body (null for 204), throws ApiError with a readable message. */
export async function api(path, { method = 'GET', json, form, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (json !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(json); }
  else if (form) init.body = form;                  // the browser writes the multipart boundary itself
  let res;
  try { res = await fetch(path, init); }
  catch (err) { if (err && err.name === 'AbortError') throw err; throw new ApiError(NETWORK_MESSAGE); }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(errorMessage(body, res.status), res.status);
  return body;
}

// --------------------------------------------------------------------------- busy state and errors
// Tests (and people) wait on body[data-state]: it stays "busy" until the response has been drawn.
let busyCount = 0;
function setBusy(on) {
  busyCount = Math.max(0, busyCount + (on ? 1 : -1));
  document.body.dataset.state = busyCount ? 'busy' : 'ready';
}
async function withBusy(fn) {
  setBusy(true);
  try { return await fn(); } finally { setBusy(false); }
}

/** A button that says what it is doing while fn runs, and cannot be pressed twice. */
async function withButton(button, busyLabel, fn) {
  const label = button.textContent;
  button.disabled = true; button.textContent = busyLabel; button.setAttribute('aria-busy', 'true');
  try { return await fn(); }
  finally { button.disabled = false; button.textContent = label; button.removeAttribute('aria-busy'); }
}

function showError(region, err) {
  if (err && err.name === 'AbortError') return;     // superseded by a newer request: not a failure
  if (!(err instanceof ApiError)) console.error(err);   // a bug in this page: the console keeps the stack
  region.textContent = err instanceof ApiError ? err.message : (err && err.message) || NETWORK_MESSAGE;
}
const clearError = (region) => { region.textContent = ''; };

// --------------------------------------------------------------------------- tabs
const TABS = ['compose', 'library', 'analyze', 'models', 'training', 'live'];

function initTabs() {
  const list = $('[role="tablist"]');
  list.addEventListener('click', (e) => { const tab = e.target.closest('[role="tab"]'); if (tab) activateTab(tab.dataset.tab); });
  // The ARIA tabs pattern: arrows move along the tabs (and show them), Home and End jump.
  list.addEventListener('keydown', (e) => {
    const tabs = [...list.querySelectorAll('[role="tab"]')];
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const j = { ArrowRight: (i + 1) % tabs.length, ArrowLeft: (i - 1 + tabs.length) % tabs.length, Home: 0, End: tabs.length - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault();
    activateTab(tabs[j].dataset.tab, { focus: true });
  });
  window.addEventListener('hashchange', () => { const t = location.hash.slice(1); if (TABS.includes(t)) activateTab(t); });
}

function activateTab(name, { focus = false } = {}) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute('aria-controls')).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);   // a reload keeps the tab
  if (name === 'compose') drawPad();                 // the pad measures itself: it had no size while hidden
  if (name === 'library' && state.library.stale) loadLibrary();
  if (name === 'models' && !state.models.loaded) loadModels();
  if (name === 'training') { drawCurve(); loadTraining(); }   // every time: a run may have started elsewhere
  if (name === 'live') { drawLive(); if (!state.live.probed && !state.live.connected) probeLive(); }
}

// --------------------------------------------------------------------------- emotions
async function loadEmotions() {
  try {
    await withBusy(async () => {
      const data = await api('/api/emotions');
      state.emotions = Array.isArray(data && data.emotions) ? data.emotions : [];
      fillJourneyPicker();
      setPad(state.pad.v, state.pad.a);            // redraw with the emotions as landmarks
      drawLive();
    });
  } catch (err) { showError($('#app-error'), err); }
}

function fillJourneyPicker() {
  const select = $('#journey-pick');
  const families = new Map();
  for (const e of state.emotions) {
    const f = e.family || 'other';
    if (!families.has(f)) families.set(f, []);
    families.get(f).push(e.name);
  }
  for (const [family, names] of [...families].sort((a, b) => a[0].localeCompare(b[0]))) {
    select.append(h('optgroup', { label: family }, names.sort().map((n) => h('option', { value: n }, n))));
  }
}

/** The thesaurus emotion closest to a point on the pad (valence spans twice arousal's range). */
function nearestEmotion(v, a) {
  let best = null, bestD = Infinity;
  for (const e of state.emotions) {
    if (typeof e.valence !== 'number' || typeof e.arousal !== 'number') continue;
    const d = ((e.valence - v) / 2) ** 2 + (e.arousal - a) ** 2;
    if (d < bestD) { bestD = d; best = e; }
  }
  return best;
}

// --------------------------------------------------------------------------- the V/A pad
const QUADRANTS = [['tense', 0, 0], ['excited', 1, 0], ['sad', 0, 1], ['calm', 1, 1]];

function initPad() {
  const pad = $('#va-pad');
  const fromPointer = (e) => {
    const r = pad.getBoundingClientRect();
    setPad(((e.clientX - r.left) / r.width) * 2 - 1, 1 - (e.clientY - r.top) / r.height, { user: true });
  };
  pad.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    pad.setPointerCapture(e.pointerId);
    state.pad.dragging = true;
    pad.focus();
    fromPointer(e);
  });
  pad.addEventListener('pointermove', (e) => { if (state.pad.dragging) fromPointer(e); });
  const stop = () => { state.pad.dragging = false; };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  pad.addEventListener('keydown', (e) => {
    const step = e.shiftKey ? 0.2 : 0.05;
    const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
    if (!move) return;
    e.preventDefault();                              // arrows would otherwise scroll the page
    setPad(state.pad.v + move[0], state.pad.a + move[1], { user: true });
  });
  $('#use-pad').addEventListener('change', () => drawPad());
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => drawPad()).observe(pad);
  setPad(state.pad.v, state.pad.a);
}

/** Move the marker. A person moving it (user) means they want it used, so the checkbox follows. */
function setPad(v, a, { user = false } = {}) {
  const p = state.pad;
  p.v = round2(clamp(v, -1, 1));
  p.a = round2(clamp(a, 0, 1));
  if (user) $('#use-pad').checked = true;
  const pad = $('#va-pad');
  const text = `valence ${fmt(p.v)}, arousal ${fmt(p.a)}`;
  pad.setAttribute('aria-valuenow', String(p.v));
  pad.setAttribute('aria-valuetext', text);
  pad.dataset.valence = String(p.v);
  pad.dataset.arousal = String(p.a);
  const near = nearestEmotion(p.v, p.a);
  $('#pad-readout').textContent = near ? `${text} · near “${near.name}”` : text;
  drawPad();
}

/** A square canvas sized for the screen's pixel density: its context in CSS pixels, or null while hidden. */
function squareCanvas(canvas) {
  const size = canvas.clientWidth;
  if (!size) return null;
  const dpr = Math.min(globalThis.devicePixelRatio || 1, 3);
  if (canvas.width !== Math.round(size * dpr)) { canvas.width = canvas.height = Math.round(size * dpr); }
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, size };
}

function drawPad() {
  const canvas = $('#va-pad');
  const ready = squareCanvas(canvas);
  if (!ready) return;                                // hidden tab: drawn again when shown
  const { ctx, size } = ready;
  const { x, y } = drawVAGrid(ctx, size);
  const on = $('#use-pad').checked;
  ctx.globalAlpha = on ? 1 : 0.4;                    // an unused pad looks it
  ctx.beginPath(); ctx.arc(x(state.pad.v), y(state.pad.a), 9, 0, Math.PI * 2);
  ctx.fillStyle = '#1f5f8b'; ctx.fill();
  ctx.lineWidth = 3; ctx.strokeStyle = '#ffffff'; ctx.stroke();
  ctx.globalAlpha = 1;
}

/**
 * The plane both pads share, on a square canvas of `size` CSS pixels: the background, a faint grid,
 * the neutral axes, the quadrant names and the thesaurus as landmarks. Returns the mapping
 * (x: valence -1..1 across, y: arousal 0..1 up).
 */
function drawVAGrid(ctx, size) {
  const x = (v) => ((v + 1) / 2) * size, y = (a) => (1 - a) * size;
  ctx.fillStyle = '#fbfcfd'; ctx.fillRect(0, 0, size, size);
  // Faint grid and the two neutral axes, so "a little tense" can be aimed at.
  ctx.strokeStyle = '#e8ebef'; ctx.lineWidth = 1;
  for (let i = 1; i < 8; i++) { const t = (i / 8) * size; ctx.beginPath(); ctx.moveTo(t, 0); ctx.lineTo(t, size); ctx.moveTo(0, t); ctx.lineTo(size, t); ctx.stroke(); }
  ctx.strokeStyle = '#c9d0d8';
  ctx.beginPath(); ctx.moveTo(size / 2, 0); ctx.lineTo(size / 2, size); ctx.moveTo(0, size / 2); ctx.lineTo(size, size / 2); ctx.stroke();
  ctx.font = '12px system-ui, sans-serif'; ctx.fillStyle = '#7a8591';
  for (const [label, right, bottom] of QUADRANTS) {
    ctx.textAlign = right ? 'right' : 'left';
    ctx.textBaseline = bottom ? 'bottom' : 'top';
    ctx.fillText(label, right ? size - 8 : 8, bottom ? size - 6 : 6);
  }
  // The thesaurus as faint landmarks.
  ctx.fillStyle = 'rgba(90, 100, 112, 0.28)';
  for (const e of state.emotions) {
    if (typeof e.valence !== 'number' || typeof e.arousal !== 'number') continue;
    ctx.beginPath(); ctx.arc(x(e.valence), y(e.arousal), 1.6, 0, Math.PI * 2); ctx.fill();
  }
  return { x, y };
}

// --------------------------------------------------------------------------- Compose: the request
const listOf = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

/** The body of POST /api/compose from the form, or an Error with a sentence to show. */
function readComposeRequest() {
  const body = {};
  const text = $('#text-input').value.trim();
  if (text) body.text = text;
  if ($('#use-pad').checked) {
    body.valence = state.pad.v;
    body.arousal = state.pad.a;
    body.dominance = round2(Number($('#dominance').value));
  }
  const journey = listOf($('#journey').value);
  if (journey.length) body.journey = journey;
  if (!body.text && body.valence === undefined && !journey.length) {
    throw new FormError('Write a few words about how you feel, or use the pad.');
  }
  const bars = Number($('#bars').value);
  if (!Number.isInteger(bars) || bars < 1 || bars > 256) throw new FormError('Bars must be a whole number from 1 to 256.');
  const seed = Number($('#seed').value === '' ? 0 : $('#seed').value);
  if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) throw new FormError('The seed must be a whole number from 0 to 4294967295.');
  body.bars = bars;
  body.seed = seed;
  if ($('#use-complexity').checked) body.complexity = round2(Number($('#complexity').value));
  const key = $('#key').value.trim();
  if (key) body.key = key;
  const breaks = listOf($('#breaks').value);
  if (breaks.length) body.breaks = breaks;
  body.composer = $('#composer').value;
  return body;
}

function initCompose() {
  const form = $('#compose-form');
  form.addEventListener('submit', (e) => { e.preventDefault(); compose(); });
  $('#text-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); compose(); }
  });
  const dominance = $('#dominance');
  dominance.addEventListener('input', () => { $('#dominance-value').textContent = fmt(Number(dominance.value)); });
  const useComplexity = $('#use-complexity'), complexity = $('#complexity');
  const showComplexity = () => {
    complexity.disabled = !useComplexity.checked;
    $('#complexity-value').textContent = useComplexity.checked ? fmt(Number(complexity.value)) : 'auto';
  };
  useComplexity.addEventListener('change', showComplexity);
  complexity.addEventListener('input', showComplexity);
  $('#journey-add').addEventListener('click', () => {
    const name = $('#journey-pick').value;
    if (!name) return;
    const input = $('#journey');
    input.value = [...listOf(input.value), name].join(', ');
    input.focus();
  });
  $('#voice').addEventListener('change', () => setAudioSource());
  initAudio();
}

async function compose() {
  const region = $('#compose-error'), button = $('#compose-button');
  if (button.disabled) return;                       // Ctrl+Enter while a composition is on its way
  clearError(region);
  $('#compose-status').textContent = '';
  let body;
  try { body = readComposeRequest(); } catch (err) { showError(region, err); return; }
  $('#result-area').setAttribute('aria-busy', 'true');
  try {
    await withButton(button, 'Composing…', () => withBusy(async () => {
      const view = await api('/api/compose', { method: 'POST', json: body });
      renderResult(view);
      state.library.stale = true;                    // the new piece is in the library now
      $('#compose-status').textContent = `Composed “${$('#result-title').textContent}”; it is kept in the Library.`;
      // On a narrow screen the result is below the form: bring it into view (focus stays put).
      const head = $('#result-title').getBoundingClientRect();
      if (head.top > window.innerHeight || head.bottom < 0) $('#result-title').scrollIntoView({ block: 'start' });
    }));
  } catch (err) { showError(region, err); }
  finally { $('#result-area').removeAttribute('aria-busy'); }
}

// --------------------------------------------------------------------------- Compose: the result
/** Show a CompositionView (from Compose, or opened from the Library). Any field may be missing. */
function renderResult(view) {
  if (!isObj(view)) throw new ApiError('Kelly answered with something that is not a composition.');
  state.current = view;
  const comp = isObj(view.composition) ? view.composition : {};
  const ex = isObj(view.explanation) ? view.explanation : {};
  const emotion = isObj(ex.emotion) ? ex.emotion
    : { emotion: comp.label, valence: comp.valence, arousal: comp.arousal, dominance: comp.dominance };
  $('#result-empty').hidden = true;
  $('#result').hidden = false;
  $('#result-title').textContent = comp.label || emotion.emotion || 'Composition';
  const p = isObj(ex.parameters) ? ex.parameters : {};
  const roll = isObj(view.roll) ? view.roll : {};
  $('#result-meta').textContent = [
    formatDate(comp.created), p.key, (p.tempo_bpm ?? roll.tempo_bpm) && `${Math.round(p.tempo_bpm ?? roll.tempo_bpm)} bpm`,
    (ex.bars ?? roll.bars) && `${ex.bars ?? roll.bars} bars`, ex.time_signature, comp.composer && `${comp.composer} composer`,
    ex.seed !== undefined && `seed ${ex.seed}`,
  ].filter(Boolean).join(' · ');
  renderEmotion($('#emotion-card'), emotion);
  renderParameters($('#parameters'), ex.parameters);
  renderProgression($('#progression'), ex.progression);
  renderRuleBreaks($('#rule-breaks'), ex.rule_breaks);
  renderProductionNotes($('#production-notes'), ex.production_notes);
  renderRollBlock($('#compose-roll'), view.roll);
  renderFiles(isObj(view.files) ? view.files : {});
  document.body.dataset.composition = String(view.id ?? comp.id ?? '');
}

/** A labelled bar: value in [min, max]; valence is drawn from the centre so its sign shows. */
function meterRow(label, value, min = 0, max = 1) {
  const ok = typeof value === 'number' && Number.isFinite(value);
  const t = ok ? (clamp(value, min, max) - min) / (max - min) : 0;
  const zero = min < 0 ? (0 - min) / (max - min) : 0;
  const fill = h('span', { class: 'meter-fill', style: { left: `${Math.min(t, zero) * 100}%`, width: `${Math.abs(t - zero) * 100}%` } });
  return h('div', { class: 'meter-row' },
    h('span', { class: 'meter-label' }, label),
    h('span', { class: `meter${min < 0 ? ' meter-centred' : ''}`, 'aria-hidden': 'true' }, fill),
    h('span', { class: 'meter-value' }, ok ? fmt(value) : '–'));
}

function renderEmotion(card, emo = {}) {
  const evidence = Array.isArray(emo.evidence) ? emo.evidence : [];
  card.replaceChildren(
    h('h3', {}, 'Emotion'),
    h('p', { class: 'emotion-name' }, emo.emotion || 'unnamed', emo.family ? h('span', { class: 'muted' }, ` · ${emo.family}`) : null),
    meterRow('Valence', emo.valence, -1, 1),
    meterRow('Arousal', emo.arousal),
    meterRow('Dominance', emo.dominance),
    typeof emo.intensity === 'number' ? meterRow('Intensity', emo.intensity) : null,
    typeof emo.confidence === 'number' ? meterRow('Confidence', emo.confidence) : null,
    evidence.length ? h('p', { class: 'sub' }, 'Heard in the words') : null,
    evidence.length ? h('ul', { class: 'chips', 'aria-label': 'Evidence' }, evidence.map((e) => h('li', {
      class: 'chip', title: [e.emotion, e.kind, typeof e.weight === 'number' && `weight ${fmt(e.weight)}`].filter(Boolean).join(' · '),
    }, `“${e.words ?? ''}”`, e.emotion ? h('span', { class: 'chip-sub' }, ` → ${e.emotion}`) : null))) : null,
    emo.source ? h('p', { class: 'hint' }, `Read from: ${emo.source}`) : null,
  );
}

function renderParameters(dl, params) {
  dl.replaceChildren();
  if (!isObj(params)) { dl.append(h('p', { class: 'muted' }, 'No parameters were given.')); return; }
  const why = isObj(params.why) ? params.why : {};
  const keys = Object.keys(params).filter((k) => k !== 'why');
  for (const k of Object.keys(why)) if (!keys.includes(k)) keys.push(k);   // a reason without a setting still says something
  for (const k of keys) {
    dl.append(h('div', { class: 'param' },
      h('dt', {}, humanize(k)),
      h('dd', {}, k in params ? formatValue(params[k]) : '',
        why[k] ? h('span', { class: 'why' }, String(why[k])) : null)));
  }
}

function renderProgression(box, prog) {
  const chords = isObj(prog) && Array.isArray(prog.chords) ? [...prog.chords] : [];
  box.replaceChildren();
  if (!chords.length) { box.append(h('p', { class: 'muted' }, 'No chords.')); return; }
  chords.sort((a, b) => (a.start_bar ?? 0) - (b.start_bar ?? 0) || (a.beat ?? 1) - (b.beat ?? 1));
  if (prog.key) box.append(h('p', { class: 'muted' }, `Home key: ${prog.key}`));
  box.append(h('ol', { class: 'chips chords', 'aria-label': 'Chords in order' }, chords.map((c) => {
    const where = `bar ${c.start_bar ?? '?'}${c.beat && c.beat !== 1 ? `, beat ${formatValue(c.beat)}` : ''}`;
    const notes = [c.borrowed_from && `borrowed from ${c.borrowed_from}`, c.cadence && `${c.cadence} cadence`, c.key && `in ${c.key}`];
    return h('li', { class: `chip chord${c.borrowed_from ? ' chord-borrowed' : ''}${c.cadence ? ' chord-cadence' : ''}`, title: notes.filter(Boolean).join(' · ') || null },
      h('span', { class: 'chord-symbol' }, c.symbol || '?'),
      c.numeral ? h('span', { class: 'chip-sub' }, ` ${c.numeral}`) : null,
      h('span', { class: 'chord-where' }, where));
  })));
}

function renderRuleBreaks(box, breaks) {
  const list = Array.isArray(breaks) ? breaks : [];
  box.replaceChildren(list.length ? h('ul', { class: 'plain-list' }, list.map((b) => h('li', {},
    h('code', { class: 'rule-id' }, b.rule || 'rule'),      // verbatim: the name to type into "Rule breaks"
    typeof b.severity === 'number' ? h('span', { class: 'muted' }, ` · ${Math.round(b.severity * 100)} %`) : null,
    b.expressed_as ? h('span', { class: 'muted' }, ` · ${b.expressed_as}`) : null,
    b.why ? h('p', {}, h('span', { class: 'sub' }, 'Why: '), b.why) : null,
    b.effect ? h('p', {}, h('span', { class: 'sub' }, 'Effect: '), b.effect) : null,
  ))) : h('p', { class: 'muted' }, 'No rules were broken.'));
}

function renderProductionNotes(box, notes) {
  const list = Array.isArray(notes) ? notes : [];
  // Kelly writes {rule, note}; plain strings are accepted too.
  box.replaceChildren(list.length ? h('ul', { class: 'plain-list' }, list.map((n) => h('li', {},
    isObj(n) && n.rule ? h('code', { class: 'rule-id' }, n.rule) : null, isObj(n) && n.rule ? ': ' : null,
    isObj(n) ? String(n.note ?? '') : String(n)))) : h('p', { class: 'muted' }, 'None.'));
}

// ---- audio and downloads
function initAudio() {
  const audio = $('#audio'), status = $('#audio-status');
  const setState = (s, text) => { audio.dataset.state = s; if (text) status.textContent = text; };
  // preload="none": nothing is rendered until the person presses play (the WAV is made on demand).
  audio.addEventListener('play', () => { if (audio.readyState < 3) setState('loading', 'Rendering the audio… this can take a few seconds.'); });
  audio.addEventListener('waiting', () => setState('loading', 'Rendering the audio… this can take a few seconds.'));
  audio.addEventListener('canplay', () => setState('ready', 'Ready.'));
  audio.addEventListener('error', async () => {
    if (!audio.getAttribute('src')) return;
    setState('error', 'The audio could not be played.');
    // The element only says "failed": ask the server once more for its sentence.
    try {
      const res = await fetch(audio.src);
      if (res.ok) { res.body && res.body.cancel(); throw new ApiError('This browser could not play the audio; try the download.'); }
      throw new ApiError(errorMessage(await res.json().catch(() => null), res.status), res.status);
    } catch (err) { showError($('#audio-error'), err instanceof ApiError ? err : new ApiError(NETWORK_MESSAGE)); }
  });
}

/** Point the player at the chosen voice's WAV; the request itself waits for play. */
function setAudioSource() {
  const files = (state.current && state.current.files) || {};
  const audio = $('#audio');
  const url = files[$('#voice').value] || files.wav;
  clearError($('#audio-error'));
  audio.pause();
  if (url) { audio.src = url; audio.dataset.state = 'idle'; } else { audio.removeAttribute('src'); audio.dataset.state = 'none'; }
  audio.load();
  $('#audio-status').textContent = 'The audio is rendered the first time you play it; that can take a few seconds.';
}

function renderFiles(files) {
  const ddsp = $('#voice option[value="wav_ddsp"]');
  ddsp.hidden = ddsp.disabled = !files.wav_ddsp;      // no DDSP voice installed: no such choice
  if (!files.wav_ddsp) $('#voice').value = 'wav';
  setAudioSource();
  for (const [id, key] of [['download-mid', 'mid'], ['download-wav', 'wav'], ['download-wav-ddsp', 'wav_ddsp'],
    ['download-musicxml', 'musicxml'], ['download-json', 'json']]) {
    const a = document.getElementById(id);
    if (files[key]) a.href = files[key]; else a.removeAttribute('href');
    a.parentElement.hidden = !files[key];
  }
}

// --------------------------------------------------------------------------- the piano roll
const ROLL = {
  gutter: 40, header: 36, drumLane: 46, beatPx: 28, minWidth: 640, maxWidth: 16000,
  bg: '#ffffff', blackKey: '#f3f5f7', grid: '#eceff2', beat: '#f4f6f8', bar: '#cfd5dc', section: '#6b7682',
  text: '#3d4752', muted: '#6b7682',
};

/**
 * Draw a roll ({ppq, bar_ticks, bars, tracks, chords, sections}) on a canvas: time across
 * (scrolls when long), pitch up (the used range ± 2), drums as ticks in their own lane at the
 * bottom, one colour per track index, opacity from velocity. `hidden` holds track indices to
 * leave out; a short piece is stretched to `minWidth` CSS pixels. Pure drawing: it sizes the
 * canvas and returns the layout, nothing else.
 */
export function drawRoll(canvas, roll, { hidden = new Set(), minWidth = ROLL.minWidth } = {}) {
  const ctx = canvas.getContext('2d');
  if (!ctx || !isObj(roll)) return null;
  const ppq = roll.ppq > 0 ? roll.ppq : 480;
  const barTicks = roll.bar_ticks > 0 ? roll.bar_ticks : ppq * 4;
  const tracks = Array.isArray(roll.tracks) ? roll.tracks : [];
  let end = (roll.bars > 0 ? roll.bars : 1) * barTicks, lo = 128, hi = -1, drums = false;
  for (const t of tracks) {
    for (const n of Array.isArray(t.notes) ? t.notes : []) {
      end = Math.max(end, n[0] + n[2]);
      if (t.is_drum) drums = true; else { lo = Math.min(lo, n[1]); hi = Math.max(hi, n[1]); }
    }
  }
  if (hi < 0) { lo = 57; hi = 71; }
  lo = Math.max(0, lo - 2); hi = Math.min(127, hi + 2);
  const rows = hi - lo + 1;
  const rowH = clamp(Math.floor(320 / rows), 4, 12);
  const lane = drums ? ROLL.drumLane : 0;
  let pxPerTick = Math.max(ROLL.beatPx / ppq, (Math.max(minWidth, 200) - ROLL.gutter - 8) / end);
  pxPerTick = Math.min(pxPerTick, (ROLL.maxWidth - ROLL.gutter) / end);   // canvases have a size limit
  const width = Math.floor(ROLL.gutter + end * pxPerTick + 8);
  const top = ROLL.header, gridBottom = top + rows * rowH, height = gridBottom + lane + 2;
  const dpr = clamp(globalThis.devicePixelRatio || 1, 1, Math.min(2, 32000 / width));
  canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const X = (tick) => ROLL.gutter + tick * pxPerTick;

  ctx.fillStyle = ROLL.bg; ctx.fillRect(0, 0, width, height);
  ctx.font = '10px system-ui, sans-serif'; ctx.textBaseline = 'middle'; ctx.textAlign = 'right';
  for (let p = lo; p <= hi; p++) {                    // black-key rows shaded, every C labelled
    const y = top + (hi - p) * rowH;
    if ([1, 3, 6, 8, 10].includes(p % 12)) { ctx.fillStyle = ROLL.blackKey; ctx.fillRect(ROLL.gutter, y, width, rowH); }
    if (p % 12 === 0) {
      ctx.fillStyle = ROLL.grid; ctx.fillRect(ROLL.gutter, y + rowH - 1, width, 1);
      ctx.fillStyle = ROLL.muted; ctx.fillText(`C${p / 12 - 1}`, ROLL.gutter - 6, y + rowH / 2);
    }
  }
  if (ppq * pxPerTick >= 10) {                       // beat lines only where they do not turn into a blur
    ctx.fillStyle = ROLL.beat;
    for (let t = 0; t < end; t += ppq) if (t % barTicks) ctx.fillRect(Math.round(X(t)), top, 1, gridBottom - top + lane);
  }
  ctx.fillStyle = ROLL.bar;
  for (let t = 0, bar = 1; t <= end; t += barTicks, bar++) {
    ctx.fillRect(Math.round(X(t)), top - 4, 1, gridBottom - top + lane + 4);
  }

  // Sections (top line) and chords (second line); a label that would overlap the last is skipped.
  const labels = (items, y, font, colour, line) => {
    let free = 0;
    ctx.font = font; ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
    for (const item of Array.isArray(items) ? items : []) {
      const [tick, name] = item;
      const x = X(tick);
      if (line) { ctx.fillStyle = ROLL.section; ctx.fillRect(Math.round(x), 0, 1.5, height); }
      if (x + 3 < free) continue;
      ctx.fillStyle = colour; ctx.fillText(String(name), x + 3, y);
      free = x + 3 + ctx.measureText(String(name)).width + 6;
    }
  };
  labels(roll.sections, 9, '600 11px system-ui, sans-serif', ROLL.text, true);
  labels(roll.chords, 26, '11px system-ui, sans-serif', ROLL.muted, false);

  // Notes: pitched tracks in the grid, drums as short ticks in their lane (height from pitch, so
  // kick, snare and cymbals sit on different lines).
  tracks.forEach((t, i) => {
    if (hidden.has(i)) return;
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    for (const n of Array.isArray(t.notes) ? t.notes : []) {
      const [start, pitch, dur, vel] = n;
      ctx.globalAlpha = 0.35 + 0.65 * clamp((vel ?? 100) / 127, 0, 1);
      if (t.is_drum) {
        const y = gridBottom + 6 + (1 - clamp((pitch - 35) / 46, 0, 1)) * (lane - 16);
        ctx.fillRect(X(start), y, 2, 6);
      } else {
        ctx.fillRect(X(start), top + (hi - pitch) * rowH, Math.max(2, dur * pxPerTick - 1), Math.max(2, rowH - 1));
      }
    }
  });
  ctx.globalAlpha = 1;
  if (drums) {
    ctx.fillStyle = ROLL.bar; ctx.fillRect(0, gridBottom, width, 1);
    ctx.fillStyle = ROLL.muted; ctx.font = '10px system-ui, sans-serif'; ctx.textAlign = 'right';
    ctx.fillText('Drums', ROLL.gutter - 4, gridBottom + lane / 2);
  }
  return { width, height, lo, hi, pxPerTick, end };
}

/** A roll with its legend (a show/hide checkbox per track) and caption; used by Compose and Analyze. */
function renderRollBlock(block, roll) {
  const canvas = $('canvas', block), legend = $('.roll-legend', block);
  legend.replaceChildren();
  if (!isObj(roll) || !Array.isArray(roll.tracks) || !roll.tracks.length) {
    $('.roll-caption', block).textContent = 'This piece has no notes to draw.';
    canvas.width = canvas.height = 0;
    return;
  }
  const hidden = new Set();
  const scroller = $('.roll-scroll', block);
  // Fill the visible width (less its border) when the piece is short; a hidden tab has none.
  const redraw = () => drawRoll(canvas, roll, { hidden, minWidth: scroller.clientWidth || undefined });
  roll.tracks.forEach((t, i) => {
    const id = `${block.id}-track-${i}`;
    const count = Array.isArray(t.notes) ? t.notes.length : 0;
    const box = h('input', { type: 'checkbox', id, checked: true, 'data-track': String(i) });
    box.addEventListener('change', () => { if (box.checked) hidden.delete(i); else hidden.add(i); redraw(); });
    legend.append(h('li', {}, box, h('label', { for: id },
      h('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] }, 'aria-hidden': 'true' }),
      t.name || `Track ${i + 1}`,
      h('span', { class: 'muted' }, ` ${t.is_drum ? 'drums' : t.role || ''} · ${count} notes`))));
  });
  const sections = Array.isArray(roll.sections) ? roll.sections.map((s) => s[1]) : [];
  const caption = [roll.bars && `${roll.bars} bars`, roll.tempo_bpm && `${Math.round(roll.tempo_bpm)} bpm`,
    `${roll.tracks.length} tracks`, sections.length && `sections: ${sections.join(', ')}`].filter(Boolean).join(' · ');
  $('.roll-caption', block).textContent = caption;
  canvas.setAttribute('aria-label', `Piano roll: ${caption}`);
  redraw();
  scroller.scrollLeft = 0;
}

// --------------------------------------------------------------------------- Library
function initLibrary() {
  const form = $('#library-form'), search = $('#library-search');
  form.addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(state.library.timer); loadLibrary(); });
  // Search as the person types, but not on every key.
  search.addEventListener('input', () => { clearTimeout(state.library.timer); state.library.timer = setTimeout(loadLibrary, 300); });
  $('#library-near').addEventListener('change', () => loadLibrary());
}

async function loadLibrary() {
  const lib = state.library, region = $('#library-error'), list = $('#library-list');
  clearError(region);
  if (lib.controller) lib.controller.abort();        // only the newest search may fill the list
  const controller = lib.controller = new AbortController();
  const params = new URLSearchParams({ limit: '50' });
  const q = $('#library-search').value.trim();
  if (q) params.set('q', q);
  if ($('#library-near').checked) { params.set('valence', String(state.pad.v)); params.set('arousal', String(state.pad.a)); }
  list.setAttribute('aria-busy', 'true');
  try {
    await withBusy(async () => {
      const data = await api(`/api/compositions?${params}`, { signal: controller.signal });
      lib.items = Array.isArray(data && data.items) ? data.items : [];
      lib.stale = false;
      renderLibrary();
    });
  } catch (err) { showError(region, err); }
  finally { if (lib.controller === controller) list.removeAttribute('aria-busy'); }
}

function renderLibrary() {
  const items = state.library.items, filtered = $('#library-search').value.trim() || $('#library-near').checked;
  $('#library-count').textContent = items.length ? `${items.length} composition${items.length === 1 ? '' : 's'}${filtered ? ' found' : ''}` : '';
  const list = $('#library-list');
  list.replaceChildren(...items.map(libraryItem));
  if (!items.length) {
    list.append(h('li', { class: 'empty-state' }, filtered ? 'No composition matches.' : 'Nothing here yet: everything you compose is kept here.'));
  }
}

function libraryItem(c) {
  const label = c.label || 'Untitled';
  const text = c.text ? (c.text.length > 180 ? `${c.text.slice(0, 180)}…` : c.text) : '';
  const notesId = `notes-${c.id}`;
  const saved = h('span', { class: 'saved', 'aria-live': 'polite' });
  const notes = h('textarea', { id: notesId, rows: 2, class: 'notes', placeholder: 'Your notes, saved when you leave the box' });
  notes.value = c.notes || '';
  notes.addEventListener('blur', () => saveNotes(c, notes, saved));
  const li = h('li', { class: 'lib-item card', 'data-id': c.id },
    h('div', { class: 'lib-head' },
      h('h3', {}, label),
      h('span', { class: 'muted' }, [formatDate(c.created), `V ${fmt(c.valence)} · A ${fmt(c.arousal)}`, c.composer].filter(Boolean).join(' · '))),
    text ? h('p', { class: 'excerpt', title: c.text }, text) : null,
    h('div', { class: 'lib-row' },
      ratingControl(c),
      h('div', { class: 'lib-actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': `Open ${label}`, onclick: (e) => openComposition(c.id, e.currentTarget) }, 'Open'),
        h('a', { class: 'button secondary', href: `/api/compositions/${encodeURIComponent(c.id)}/export`, download: '', 'aria-label': `Export ${label} as a zip` }, 'Export'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${label}`, onclick: () => deleteComposition(c, li) }, 'Delete'))),
    h('div', { class: 'notes-row' }, h('label', { for: notesId, class: 'field-label' }, 'Notes ', saved), notes));
  return li;
}

function ratingControl(c) {
  const group = h('div', { class: 'stars', role: 'group', 'aria-label': 'Rating' });
  const paint = () => buttons.forEach((b, i) => {
    b.textContent = i < (c.rating || 0) ? '★' : '☆';
    b.setAttribute('aria-pressed', String(c.rating === i + 1));
  });
  // Pressing the current rating again clears it.
  const buttons = [1, 2, 3, 4, 5].map((n) => h('button', {
    type: 'button', class: 'star', 'aria-label': `Rate ${n} of 5`, onclick: () => saveRating(c, c.rating === n ? null : n),
  }));
  const saveRating = async (item, rating) => {
    clearError($('#library-error'));
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await withBusy(async () => {
        const updated = await api(`/api/compositions/${encodeURIComponent(item.id)}`, { method: 'PATCH', json: { rating } });
        Object.assign(item, isObj(updated) ? updated : { rating });
        paint();
      });
    } catch (err) { showError($('#library-error'), err); }
    finally { buttons.forEach((b) => { b.disabled = false; }); }
  };
  group.append(...buttons);
  paint();
  return group;
}

async function saveNotes(c, textarea, indicator) {
  const notes = textarea.value;
  if (notes === (c.notes || '')) return;             // nothing changed: no request
  clearError($('#library-error'));
  indicator.textContent = 'saving…';
  try {
    await withBusy(async () => {
      const updated = await api(`/api/compositions/${encodeURIComponent(c.id)}`, { method: 'PATCH', json: { notes } });
      Object.assign(c, isObj(updated) ? updated : { notes });
      indicator.textContent = 'saved';
      setTimeout(() => { if (indicator.textContent === 'saved') indicator.textContent = ''; }, 2500);
    });
  } catch (err) { indicator.textContent = 'not saved'; showError($('#library-error'), err); }
}

async function openComposition(id, button) {
  clearError($('#library-error'));
  try {
    await withButton(button, 'Opening…', () => withBusy(async () => {
      const view = await api(`/api/compositions/${encodeURIComponent(id)}`);
      activateTab('compose');                          // first, so the roll can measure its width
      renderResult(view);
      $('#result-title').focus();
    }));
  } catch (err) { showError($('#library-error'), err); }
}

async function deleteComposition(c, li) {
  if (!confirm(`Delete “${c.label || 'this composition'}”? Its files go too; this cannot be undone.`)) return;
  clearError($('#library-error'));
  try {
    await withBusy(async () => {
      await api(`/api/compositions/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
      const next = li.nextElementSibling || li.previousElementSibling;
      state.library.items = state.library.items.filter((x) => x.id !== c.id);
      renderLibrary();
      // Keep keyboard focus in the list rather than losing it with the removed row.
      const target = next && $(`[data-id="${CSS.escape(next.dataset.id || '')}"] .lib-actions button`);
      (target || $('#library-search')).focus();
    });
  } catch (err) { showError($('#library-error'), err); }
}

// --------------------------------------------------------------------------- Analyze
function initAnalyze() {
  $('#analyze-form').addEventListener('submit', (e) => { e.preventDefault(); analyze(); });
}

async function analyze() {
  const region = $('#analyze-error'), file = $('#analyze-file').files[0];
  clearError(region);
  if (!file) { showError(region, new FormError('Choose a MIDI file first.')); return; }
  if (file.size > MAX_UPLOAD) { showError(region, new FormError('That file is larger than 8 MB; Kelly reads MIDI files up to 8 MB.')); return; }
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    await withButton($('#analyze-button'), 'Analyzing…', () => withBusy(async () => {
      const data = await api('/api/analyze', { method: 'POST', form }) || {};
      $('#analyze-result').hidden = false;
      $('#analyze-summary').textContent = [data.filename || file.name, keyText(data.key),
        typeof data.tempo_bpm === 'number' && `${Math.round(data.tempo_bpm)} bpm`, data.bars && `${data.bars} bars`].filter(Boolean).join(' · ');
      $('#analyze-report').textContent = typeof data.report === 'string' && data.report ? data.report : 'Kelly had nothing to report.';
      renderRollBlock($('#analyze-roll'), data.roll);
      $('#analyze-title').focus();
    }));
  } catch (err) { showError(region, err); }
}

/** The analysis's key: a string, or Kelly's {tonic, mode, church_mode, name} object. */
function keyText(key) {
  if (!isObj(key)) return key ? String(key) : '';
  return key.tonic && (key.church_mode || key.mode) ? `${key.tonic} ${key.church_mode || key.mode}` : String(key.name || '');
}

// --------------------------------------------------------------------------- Models
function initModels() { $('#models-refresh').addEventListener('click', () => loadModels()); }

async function loadModels() {
  const region = $('#models-error'), table = $('#models-table');
  clearError(region);
  table.setAttribute('aria-busy', 'true');
  try {
    await withBusy(async () => {
      const data = await api('/api/models');
      state.models.list = Array.isArray(data && data.models) ? data.models : [];
      state.models.loaded = true;
      renderModels();
    });
  } catch (err) { showError(region, err); }
  finally { table.removeAttribute('aria-busy'); }
}

function renderModels() {
  const body = $('#models-table tbody');
  body.replaceChildren(...state.models.list.map((m, i) => modelRow(m, i)));
  if (!state.models.list.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'Kelly reported no models.')));
}

function metricsList(metrics) {
  if (!isObj(metrics)) return h('span', { class: 'muted' }, '–');
  const entries = Object.entries(metrics).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h('span', { class: 'muted' }, '–');
  return h('dl', { class: 'metrics' }, entries.map(([k, v]) => h('div', {}, h('dt', {}, humanize(k)), h('dd', {}, formatValue(v)))));
}

function modelRow(m, i) {
  const id = `model-enabled-${i}`;
  // Only the networks can be switched off: the server answers 404 for the transformer and the DDSP voice.
  const switchable = (m.kind || 'network') === 'network';
  const box = h('input', { type: 'checkbox', id, checked: !!m.enabled, disabled: !switchable, 'data-model': m.name });
  box.addEventListener('change', () => toggleModel(m, box));
  return h('tr', { 'data-model': m.name },
    h('th', { scope: 'row' }, m.name || '?', Array.isArray(m.files) && m.files.length ? h('span', { class: 'hint block' }, m.files.join(', ')) : null),
    h('td', {}, m.kind || '–'),
    h('td', {}, m.trained ? 'yes' : 'no'),
    h('td', { class: 'provenance' }, m.provenance || '–'),
    h('td', {}, metricsList(m.metrics)),
    h('td', {}, h('span', { class: 'check' }, box, h('label', { for: id }, 'Enabled', h('span', { class: 'visually-hidden' }, ` (${m.name})`))),
      switchable ? null : h('span', { class: 'hint block' }, 'always on')),
    h('td', {}, modelActions(m, i)));
}

/** Validate (the model's own checks, run by the server) and export (its files as a zip). */
function modelActions(m, i) {
  const key = m.key || m.name;
  const result = h('div', { class: 'hint block', id: `model-check-${i}`, 'aria-live': 'polite', 'data-testid': 'model-check' });
  const validate = h('button', { type: 'button', 'data-testid': 'model-validate', 'aria-label': `Validate ${m.name}` }, 'Validate');
  validate.addEventListener('click', async () => {
    const region = $('#models-error');
    clearError(region);
    validate.disabled = true;
    result.textContent = 'Checking…';
    try {
      const r = await api(`/api/models/${encodeURIComponent(key)}/validate`, { method: 'POST', json: {} });
      const checks = Array.isArray(r.checks) ? r.checks : [];
      result.textContent = (r.ok ? 'All checks passed: ' : 'Failed: ') +
        checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.check} (${c.detail})`).join('; ');
      result.dataset.ok = String(!!r.ok);
    } catch (err) {
      result.textContent = '';
      showError(region, err);
    } finally {
      validate.disabled = false;
    }
  });
  const exportLink = h('a', { href: `/api/models/${encodeURIComponent(key)}/export`, download: `kelly-${key}.zip`,
    'data-testid': 'model-export', 'aria-label': `Export ${m.name} (zip)` }, 'Export');
  return h('div', { class: 'model-actions' }, validate, ' ', exportLink, result);
}

async function toggleModel(m, box) {
  const region = $('#models-error'), enabled = box.checked;
  clearError(region);
  box.disabled = true;
  try {
    await withBusy(async () => {
      const updated = await api(`/api/models/${encodeURIComponent(m.name)}/enabled`, { method: 'POST', json: { enabled } });
      const i = state.models.list.indexOf(m);
      state.models.list[i] = isObj(updated) && updated.name ? updated : { ...m, enabled };
      renderModels();
      const again = document.getElementById(`model-enabled-${i}`);
      if (again) again.focus();                      // the row was rebuilt: keep the keyboard where it was
    });
  } catch (err) {
    box.checked = !enabled;                          // the switch shows what the server has, not the wish
    box.disabled = false;
    showError(region, err);
  }
}

// --------------------------------------------------------------------------- Training
const NETWORKS = {
  emotionrecognizer: 'Emotion recognizer', melodytransformer: 'Melody transformer', harmonypredictor: 'Harmony predictor',
  dynamicsengine: 'Dynamics engine', groovepredictor: 'Groove predictor',
};
const DATA_LABELS = { synthetic: 'synthetic data', corpus: 'the corpus' };
const networkLabel = (name) => NETWORKS[name] || String(name || 'Network');
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
/** A loss, with its significant figures (losses can be 0.0012 or 2300: fixed decimals would hide one or the other). */
const lossText = (x) => (isNum(x) ? String(Number(x.toPrecision(4))) : '–');
const runHistory = (run) => (Array.isArray(run && run.history) ? run.history.filter(isObj) : []);

/** A run's times, whether ISO text or seconds since 1970, as milliseconds (NaN when unreadable). */
function timeOf(t) {
  if (t === null || t === undefined || t === '') return NaN;
  return typeof t === 'number' ? (t < 1e12 ? t * 1000 : t) : new Date(t).getTime();
}
/** 83 seconds → "1:23", like the server's ETA. */
function durationText(ms) {
  const s = Math.max(0, Math.round(ms / 1000)), hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function initTraining() {
  $('#train-form').addEventListener('submit', (e) => { e.preventDefault(); startTraining(); });
  $('#train-cancel').addEventListener('click', () => cancelRun());
  $('#train-resume').addEventListener('click', () => resumeRun());
  $('#train-refresh').addEventListener('click', () => loadTraining());
  $('#train-history').addEventListener('toggle', () => renderHistoryTable());
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => drawCurve()).observe($('#train-curve'));
}

/** The body of POST /api/training from the form, or a FormError with a sentence to show. */
function readTrainingRequest() {
  const epochs = Number($('#train-epochs').value);
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 500) throw new FormError('Epochs must be a whole number from 1 to 500.');
  return { model: $('#train-model').value, data: $('#train-data').value, epochs };
}

/** GET /api/training: the list, and the running run (shown and followed) if there is one. */
async function loadTraining({ keepError = false } = {}) {
  const t = state.training, region = $('#training-error'), list = $('#train-runs');
  if (!keepError) clearError(region);
  list.setAttribute('aria-busy', 'true');
  try {
    await withBusy(async () => {
      const data = await api('/api/training');
      t.runs = Array.isArray(data && data.runs) ? data.runs.filter(isObj) : [];
      const running = isObj(data && data.running) && data.running.status === 'running' ? data.running : null;
      if (running) { showRun(running); return; }     // showRun merges it into the list and follows it
      t.running = null;
      stopFollowing();                               // whatever was followed has ended, even if its last event was lost
      // The shown run may have moved on while the tab was closed: take the list's copy.
      const fresh = t.shown && t.runs.find((r) => r.id === t.shown.id);
      if (fresh) t.shown = fresh;
      renderRun();
      renderRuns();
      updateTrainingControls();
    });
  } catch (err) { showError(region, err); }
  finally { list.removeAttribute('aria-busy'); }
}

/** Put a run in the view (and follow it if it is running). */
function showRun(run) {
  state.training.shown = run;
  updateRun(run);
}

/** A newer copy of a run (from a response, an event or a poll): the list, the view and the controls follow. */
function updateRun(run) {
  const t = state.training;
  if (!isObj(run) || run.id === undefined || run.id === null) return;
  const i = t.runs.findIndex((r) => r.id === run.id);
  if (i >= 0) t.runs[i] = run; else t.runs.unshift(run);
  const was = t.shown && t.shown.id === run.id ? t.shown.status : null;
  if (run.status === 'running') {
    t.running = run;
    follow(run.id);
  } else if (t.running && t.running.id === run.id) {
    t.running = null;
    state.models.loaded = false;                     // a finished run may have written a model: Models asks again
  }
  if (t.following === run.id && run.status !== 'running') stopFollowing();
  if (t.shown && t.shown.id === run.id) {
    t.shown = run;
    renderRun();
    if (was && was !== run.status) $('#train-announce').textContent = `${networkLabel(run.model)}: ${run.status}.`;
  }
  renderRuns();
  updateTrainingControls();
}

/** Start is off while a run is going (the server would answer 409); so is Resume. */
function updateTrainingControls() {
  const going = !!state.training.running;
  $('#train-start').disabled = going;
  $('#train-resume').disabled = going;
  $('#train-start').title = going ? 'A run is going; wait for it or cancel it.' : '';
}

// ---- following a run: Server-Sent Events, else a poll once a second
function follow(id) {
  const t = state.training;
  if (t.following === id) return;
  stopFollowing();
  t.following = id;
  if (typeof EventSource === 'undefined') { pollRun(id); return; }
  const source = t.source = new EventSource(`/api/training/${encodeURIComponent(id)}/events`);
  source.addEventListener('message', (e) => {
    let run;
    try { run = JSON.parse(e.data); } catch { return; }   // not a run: the next event says it all again
    if (t.source === source) updateRun(run);          // closes the stream once the run has ended
  });
  // The stream broke, or ended before saying how the run ended: close it (EventSource would
  // reconnect on its own) and ask once a second until the run is over.
  source.addEventListener('error', () => {
    if (t.source !== source) return;
    source.close();
    t.source = null;
    pollRun(id);
  });
}

function stopFollowing() {
  const t = state.training;
  if (t.source) { t.source.close(); t.source = null; }
  clearTimeout(t.poll);
  t.following = null;
}

function pollRun(id) {
  const t = state.training;
  clearTimeout(t.poll);
  t.poll = setTimeout(async () => {
    if (t.following !== id) return;
    const region = $('#training-error');
    try {
      const run = await api(`/api/training/${encodeURIComponent(id)}`);
      if (t.following !== id) return;
      if (t.pollError && region.textContent === t.pollError) clearError(region);   // only the poll's own message
      t.pollError = '';
      updateRun(run);                                // stops following when the run has ended
    } catch (err) {
      showError(region, err);
      t.pollError = region.textContent;
      if (err instanceof ApiError && err.status === 404) {   // the run is gone: nothing more to wait for
        if (t.running && t.running.id === id) t.running = null;
        stopFollowing();
        updateTrainingControls();
        return;
      }
    }
    if (t.following === id) pollRun(id);             // a network error: keep trying, the server may be back
  }, 1000);
}

// ---- actions
async function startTraining() {
  const region = $('#training-error'), button = $('#train-start');
  if (button.disabled) return;
  clearError(region);
  let body;
  try { body = readTrainingRequest(); } catch (err) { showError(region, err); return; }
  // The shown run is about to be replaced: a test waiting for "finished" must not see the old one's.
  delete document.body.dataset.training;
  delete document.body.dataset.trainingEpoch;
  try {
    await withButton(button, 'Starting…', () => withBusy(async () => {
      const run = await api('/api/training', { method: 'POST', json: body });
      if (!isObj(run)) throw new ApiError('Kelly answered with something that is not a training run.');
      showRun(run);
      $('#train-announce').textContent = `${networkLabel(run.model)}: training started.`;
    }));
  } catch (err) {
    showError(region, err);
    if (state.training.shown) setTrainingData(state.training.shown);
    if (err instanceof ApiError && err.status === 409) loadTraining({ keepError: true });   // show the run that is going
  } finally { updateTrainingControls(); }
}

async function cancelRun() {
  const run = state.training.shown, region = $('#training-error');
  if (!run) return;
  clearError(region);
  try {
    await withButton($('#train-cancel'), 'Cancelling…', () => withBusy(async () => {
      updateRun(await api(`/api/training/${encodeURIComponent(run.id)}/cancel`, { method: 'POST' }));
    }));
  } catch (err) { showError(region, err); }
  finally {
    updateTrainingControls();
    // The Cancel button has gone: keep the keyboard on the run rather than on nothing.
    if ($('#train-cancel').hidden) ($('#train-resume').hidden ? $('#train-run-title') : $('#train-resume')).focus();
  }
}

/** Continue a cancelled or failed run from its last checkpoint, to the epochs it was started with. */
async function resumeRun() {
  const run = state.training.shown, region = $('#training-error');
  if (!run) return;
  clearError(region);
  try {
    await withButton($('#train-resume'), 'Resuming…', () => withBusy(async () => {
      updateRun(await api(`/api/training/${encodeURIComponent(run.id)}/resume`, { method: 'POST', json: {} }));
    }));
  } catch (err) { showError(region, err); }
  finally {
    updateTrainingControls();
    if ($('#train-resume').hidden) ($('#train-cancel').hidden ? $('#train-run-title') : $('#train-cancel')).focus();
  }
}

/** A past run chosen in the list: shown at once, then refreshed (the list's copy may be behind). */
async function openRun(run) {
  const region = $('#training-error');
  clearError(region);
  showRun(run);
  $('#train-announce').textContent = `Showing ${networkLabel(run.model)}, ${run.status}.`;
  try {
    await withBusy(async () => { updateRun(await api(`/api/training/${encodeURIComponent(run.id)}`)); });
  } catch (err) { showError(region, err); }
}

// ---- the view
function setTrainingData(run) {
  document.body.dataset.training = String(run.status ?? '');
  document.body.dataset.trainingEpoch = String(run.epoch ?? 0);
}

/** "running · epoch 3 of 5 · ETA 0:04", "finished · 5 of 5 epochs · took 0:23". */
function trainingStatusText(run) {
  const epoch = run.epoch ?? 0, epochs = run.epochs ?? '?';
  if (run.status === 'running') return [`running · epoch ${epoch} of ${epochs}`, run.eta && `ETA ${run.eta}`].filter(Boolean).join(' · ');
  const took = timeOf(run.finished) - timeOf(run.started);
  return [`${run.status || 'unknown'} · ${epoch} of ${epochs} epochs`, took >= 0 && `took ${durationText(took)}`].filter(Boolean).join(' · ');
}

function renderRun() {
  const run = state.training.shown;
  $('#train-empty').hidden = !!run;
  $('#train-view').hidden = !run;
  if (!run) return;
  const history = runHistory(run), last = history[history.length - 1] || {};
  $('#train-run-title').textContent = `${networkLabel(run.model)} on ${DATA_LABELS[run.data] || run.data || '?'}`;
  // the first 8 of a 32-hex id are enough to tell runs apart
  $('#train-run-meta').textContent = [run.id !== undefined && `run ${String(run.id).slice(0, 8)}`,
    formatDate(run.started) && `started ${formatDate(run.started)}`]
    .filter(Boolean).join(' · ');
  const status = $('#train-status');
  status.textContent = trainingStatusText(run);
  status.dataset.status = String(run.status);
  const progress = $('#train-progress');
  progress.max = Math.max(1, Number(run.epochs) || 1);
  progress.value = clamp(Number(run.epoch) || 0, 0, progress.max);
  progress.setAttribute('aria-valuetext', `${progress.value} of ${progress.max} epochs`);
  const message = $('#train-message');
  message.textContent = run.message || '';
  message.classList.toggle('failed', run.status === 'failed');
  $('#train-numbers').replaceChildren(...[
    ['Loss', last.loss], ['Validation loss', last.val], ['Best validation', run.best_val], ['Baseline', run.baseline_val],
  ].map(([label, x]) => h('div', {}, h('dt', {}, label), h('dd', {}, lossText(x)))));
  // How the best compares with the baseline (what a network that learned nothing would score).
  const best = run.best_val, base = run.baseline_val;
  $('#train-compare').textContent = isNum(best) && isNum(base) && base > 0
    ? `The best validation loss is ${Math.abs(Math.round((1 - best / base) * 100))} % ${best <= base ? 'below' : 'above'} the baseline.` : '';
  $('#train-out').replaceChildren(...(run.out ? ['Saved in ', h('code', {}, String(run.out))] : []));
  $('#train-cancel').hidden = run.status !== 'running';
  $('#train-resume').hidden = !['cancelled', 'failed'].includes(run.status);
  drawCurve();
  renderHistoryTable();
  setTrainingData(run);
}

/** The per-epoch table is only built while its <details> is open: a long run has hundreds of rows. */
function renderHistoryTable() {
  const details = $('#train-history'), body = $('#train-history tbody');
  if (!details.open) { body.replaceChildren(); return; }
  const history = runHistory(state.training.shown);
  body.replaceChildren(...history.map((p) => h('tr', {},
    h('td', {}, String(p.epoch ?? '')), h('td', {}, lossText(p.loss)), h('td', {}, lossText(p.val)),
    h('td', {}, isNum(p.seconds) ? p.seconds.toFixed(1) : '–'))));
  if (!history.length) body.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No epoch has finished yet.')));
}

function drawCurve() {
  const canvas = $('#train-curve'), run = state.training.shown;
  if (!run) return;
  const history = runHistory(run), first = history[0] || {}, last = history[history.length - 1] || {};
  // The picture in words, for whoever cannot see it.
  canvas.setAttribute('aria-label', history.length
    ? `Loss curve over ${history.length} epoch${history.length === 1 ? '' : 's'}: training loss ${lossText(first.loss)} to ${lossText(last.loss)}, `
      + `validation loss ${lossText(first.val)} to ${lossText(last.val)}${isNum(run.baseline_val) ? `, baseline ${lossText(run.baseline_val)}` : ''}.`
    : 'Loss curve: no epoch has finished yet.');
  drawLossCurve(canvas, run);
}

function renderRuns() {
  const t = state.training, list = $('#train-runs');
  // Events rebuild the list every epoch: keep the keyboard on the run it was on.
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.closest('li')?.dataset.id : null;
  const runs = [...t.runs].sort((a, b) => (timeOf(b.started) || 0) - (timeOf(a.started) || 0));
  list.replaceChildren(...runs.map(runItem));
  if (!runs.length) list.append(h('li', { class: 'empty-state' }, 'No training runs yet.'));
  if (focused !== null && focused !== undefined) {
    const again = $(`li[data-id="${CSS.escape(focused)}"] button`, list);
    if (again) again.focus();
  }
}

function runItem(run) {
  const shown = state.training.shown && state.training.shown.id === run.id;
  const started = formatDate(run.started);
  return h('li', { 'data-id': String(run.id), 'data-status': String(run.status) },
    h('button', { type: 'button', class: 'train-run-item', 'aria-current': shown ? 'true' : null, onclick: () => openRun(run) },
      h('span', { class: 'train-run-name' }, networkLabel(run.model)),
      h('span', { class: `train-badge status-${String(run.status).replace(/[^a-z]/g, '')}` }, String(run.status || '?')),
      h('span', { class: 'muted' }, `${run.data || '?'} · ${run.epoch ?? 0} of ${run.epochs ?? '?'} epochs · best val ${lossText(run.best_val)}`),
      started ? h('span', { class: 'muted train-run-started' }, started) : null));
}

// ---- the loss curve (pure drawing)
const CURVE = {
  height: 260, left: 58, right: 18, top: 34, bottom: 34,
  loss: PALETTE[0], val: PALETTE[1], baseline: '#56606b', grid: '#eceff2', axis: '#b9c2cb', text: '#3d4752', muted: '#6b7682',
};

/** About `count` round steps across [lo, hi]: 1, 2 or 5 times a power of ten. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count), mag = 10 ** Math.floor(Math.log10(raw)), n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}
const tickText = (v) => String(Number(v.toPrecision(3)));

/**
 * Draw a run's loss curve on a canvas at its CSS size: training and validation loss per epoch,
 * the baseline dashed, a legend on top, epochs across and loss up (log scale when the losses
 * span more than 30×, as early epochs often do). Pure drawing: returns the scale, nothing else.
 */
export function drawLossCurve(canvas, run) {
  const width = canvas.clientWidth, height = canvas.clientHeight || CURVE.height;
  if (!width) return null;                           // hidden tab: drawn again when shown
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  const dpr = clamp(globalThis.devicePixelRatio || 1, 1, 3);
  canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, width, height);
  const history = runHistory(run).filter((p) => isNum(p.epoch)).sort((a, b) => a.epoch - b.epoch);
  const baseline = isNum(run && run.baseline_val) ? run.baseline_val : null;
  const values = history.flatMap((p) => [p.loss, p.val]).filter(isNum);
  if (baseline !== null) values.push(baseline);
  const x0 = CURVE.left, x1 = width - CURVE.right, y0 = CURVE.top, y1 = height - CURVE.bottom;
  const xMax = Math.max(2, Number(run && run.epochs) || 0, history.length ? history[history.length - 1].epoch : 0);
  const X = (e) => x0 + ((e - 1) / (xMax - 1)) * (x1 - x0);

  // Legend: a short line (dashed for the baseline) and its name, left to right.
  ctx.font = '12px system-ui, sans-serif'; ctx.textBaseline = 'middle'; ctx.textAlign = 'left';
  let lx = x0;
  for (const [name, colour, dash] of [['training loss', CURVE.loss, []], ['validation loss', CURVE.val, []],
    ...(baseline !== null ? [['baseline', CURVE.baseline, [5, 4]]] : [])]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.setLineDash(dash);
    ctx.beginPath(); ctx.moveTo(lx, 13); ctx.lineTo(lx + 20, 13); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = CURVE.text; ctx.fillText(name, lx + 26, 13);
    lx += 26 + ctx.measureText(name).width + 18;
  }

  ctx.strokeStyle = CURVE.axis; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(x0 + 0.5, y0); ctx.lineTo(x0 + 0.5, y1 + 0.5); ctx.lineTo(x1, y1 + 0.5); ctx.stroke();
  // Epoch labels: round steps, and always the first and the last epoch.
  const xStep = Math.max(1, Math.round(niceStep(xMax - 1, 6)));
  const xTicks = new Set([1, xMax]);
  for (let e = xStep; e < xMax; e += xStep) if ((X(e) - X(1)) > 24 && (X(xMax) - X(e)) > 24) xTicks.add(e);
  ctx.fillStyle = CURVE.muted; ctx.font = '11px system-ui, sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (const e of xTicks) { ctx.fillRect(Math.round(X(e)), y1, 1, 4); ctx.fillText(String(e), X(e), y1 + 6); }
  ctx.textAlign = 'right';
  ctx.fillText('epoch', x1, y1 + 19);

  if (!values.length) {
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.font = '13px system-ui, sans-serif';
    ctx.fillText('No epoch has finished yet.', (x0 + x1) / 2, (y0 + y1) / 2);
    return { log: false, xMax };
  }

  let lo = Math.min(...values), hi = Math.max(...values);
  const log = lo > 0 && hi / lo > 30;
  let ticks;
  if (log) {
    const a = Math.log10(lo), b = Math.log10(hi), pad = (b - a) * 0.05;
    lo = 10 ** (a - pad); hi = 10 ** (b + pad);
    const all = [];
    for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) for (const m of [1, 2, 5]) all.push(m * 10 ** k);
    const decades = all.filter((v, i) => i % 3 === 0 && v >= lo && v <= hi);
    ticks = decades.length >= 3 ? decades : all.filter((v) => v >= lo && v <= hi);
  } else {
    if (hi - lo < 1e-12) { const d = Math.abs(hi) * 0.1 || 1; lo -= d; hi += d; }
    const step = niceStep(hi - lo, 5);
    lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step;
    ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(v);
  }
  const Y = log
    ? (v) => y1 - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (y1 - y0)
    : (v) => y1 - ((v - lo) / (hi - lo)) * (y1 - y0);

  ctx.textBaseline = 'middle'; ctx.textAlign = 'right';
  for (const v of ticks) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.fillStyle = CURVE.grid; ctx.fillRect(x0 + 1, y, x1 - x0, 1);
    ctx.fillStyle = CURVE.muted; ctx.fillText(tickText(v), x0 - 6, y);
  }
  ctx.save(); ctx.translate(12, (y0 + y1) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = 'center';
  ctx.fillText(log ? 'loss (log scale)' : 'loss', 0, 0); ctx.restore();

  if (baseline !== null) {
    ctx.strokeStyle = CURVE.baseline; ctx.lineWidth = 1.5; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(x0, Y(baseline)); ctx.lineTo(x1, Y(baseline)); ctx.stroke();
    ctx.setLineDash([]);
  }
  // Each series as a line, broken where an epoch has no number; dots while there are few epochs.
  for (const [key, colour] of [['loss', CURVE.loss], ['val', CURVE.val]]) {
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 2;
    ctx.beginPath();
    let pen = false;
    for (const p of history) {
      if (!isNum(p[key])) { pen = false; continue; }
      if (pen) ctx.lineTo(X(p.epoch), Y(p[key])); else ctx.moveTo(X(p.epoch), Y(p[key]));
      pen = true;
    }
    ctx.stroke();
    if (history.length <= 40) {
      for (const p of history) if (isNum(p[key])) { ctx.beginPath(); ctx.arc(X(p.epoch), Y(p[key]), 3, 0, Math.PI * 2); ctx.fill(); }
    }
  }
  return { log, lo, hi, xMax };
}

// --------------------------------------------------------------------------- Live
// A running `kelly engine`, followed through GET /api/live/events (its state four times a second).
// The page keeps the last 40 s of fused readings itself, for the trail on the plane.
const LIVE_TRAIL_S = 40;
const LIVE_SOURCES = ['audio', 'text', 'biometrics', 'explicit'];
const LIVE_COLOURS = { audio: PALETTE[1], text: PALETTE[2], biometrics: PALETTE[3], explicit: PALETTE[6] };
const LIVE_NUMBERS = [
  ['blocks', 'Blocks'], ['overruns', 'Overruns'], ['dropped_frames', 'Dropped frames'],
  ['inferences', 'Inferences'], ['notes_sounding', 'Notes sounding'], ['latency', 'Latency'],
];
const LIVE_RETRIES = 3;
const pct = (x) => (isNum(x) ? `${Math.round(clamp(x, 0, 1) * 100)} %` : '–');
const liveColour = (name) => LIVE_COLOURS[name] || PALETTE[7];
/** A reading with the numbers the plane needs, or null. */
const liveReading = (e) => (isObj(e) && isNum(e.valence) && isNum(e.arousal) ? e : null);

function initLive() {
  const plane = $('#live-plane'), l = state.live;
  $('#live-connect').addEventListener('click', () => liveConnect());
  $('#live-disconnect').addEventListener('click', () => liveDisconnect());
  $('#live-emotion-send').addEventListener('click', () => sendLiveEmotion());
  $('#live-text-form').addEventListener('submit', (e) => { e.preventDefault(); sendLiveText(); });
  const dominance = $('#live-dominance');
  dominance.addEventListener('input', () => { $('#live-dominance-value').textContent = fmt(Number(dominance.value)); });

  // The plane: a press (and drag) chooses the point, letting go sends it; the keyboard moves the ring, Enter sends.
  const fromPointer = (e) => {
    const r = plane.getBoundingClientRect();
    setLiveTarget(((e.clientX - r.left) / r.width) * 2 - 1, 1 - (e.clientY - r.top) / r.height);
  };
  plane.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    plane.setPointerCapture(e.pointerId);
    l.dragging = true;
    plane.focus();
    fromPointer(e);
  });
  plane.addEventListener('pointermove', (e) => { if (l.dragging) fromPointer(e); });
  plane.addEventListener('pointerup', (e) => {
    if (!l.dragging) return;
    l.dragging = false;
    fromPointer(e);
    sendLiveEmotion();
  });
  plane.addEventListener('pointercancel', () => { l.dragging = false; });
  plane.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); sendLiveEmotion(); return; }
    const step = e.shiftKey ? 0.2 : 0.05;
    const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
    if (!move) return;
    e.preventDefault();
    // The first move starts from where the engine is (the middle of the plane before any reading).
    const now = liveReading(l.engine && l.engine.emotion);
    const from = l.target || (now ? { v: now.valence, a: now.arousal } : { v: 0, a: 0.5 });
    setLiveTarget(from.v + move[0], from.a + move[1]);
  });
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => drawLive()).observe(plane);

  // The numbers are built once and then only their text changes (they change four times a second).
  $('#live-numbers').replaceChildren(...LIVE_NUMBERS.map(([key, label]) => h('div', {},
    h('dt', {}, label), h('dd', { 'data-key': key }, '–'))));
  renderLiveSources(null);
  renderLiveModels(null);
  renderLiveWarnings(null);
  setLiveConnection(false);
}

/** The status line, e.g. "connected · bar 12 · 96 BPM · 4/4 · playing". */
export function liveStatusText(s) {
  if (!isObj(s)) return 'connected';
  return ['connected', isNum(s.bar) && `bar ${s.bar}`, isNum(s.tempo_bpm) && `${Math.round(s.tempo_bpm)} BPM`,
    s.time_signature, s.playing ? 'playing' : 'stopped', s.running === false && 'engine stopping'].filter(Boolean).join(' · ');
}

/** The sentence for "no engine": the server's (it names the socket and `kelly engine`), else ours. */
const liveMessage = (data) => (isObj(data) && typeof data.message === 'string' && data.message.trim()
  ? data.message : 'No kelly engine is answering; start one with `kelly engine`.');

/** Connected (following the stream) or not: the buttons, the status line and body[data-live] follow. */
function setLiveConnection(on, message = '') {
  const l = state.live, connect = $('#live-connect'), disconnect = $('#live-disconnect');
  const was = l.connected;
  // The button about to be hidden may have the keyboard: hand it to the other one.
  const handOver = document.activeElement === (on ? connect : disconnect);
  l.connected = on;
  connect.hidden = on;
  disconnect.hidden = !on;
  if (handOver) (on ? disconnect : connect).focus();
  $('#panel-live').classList.toggle('live-off', !on);
  const status = $('#live-status');
  status.dataset.live = on ? 'connected' : 'disconnected';
  status.textContent = on ? liveStatusText(l.engine) : (message || 'Not connected.');
  document.body.dataset.live = on ? 'connected' : 'disconnected';
  if (was !== on) $('#live-announce').textContent = on ? 'Connected to the engine.' : (message || 'Disconnected.');
}

/** Close the stream and any pending retry (nothing is shown). */
function liveClose() {
  const l = state.live;
  if (l.source) { l.source.close(); l.source = null; }
  clearTimeout(l.retry);
}

/** Connect: ask once (for the message when there is no engine), then follow the stream. */
async function liveConnect() {
  const l = state.live, region = $('#live-error'), button = $('#live-connect');
  if (button.disabled) return;
  const focused = document.activeElement === button;
  const gen = ++l.gen;
  clearError(region);
  liveClose();
  try {
    await withButton(button, 'Connecting…', () => withBusy(async () => {
      const data = await api('/api/live');
      if (gen !== l.gen) return;
      if (!isObj(data) || !data.connected) {
        const message = liveMessage(data);
        setLiveConnection(false, message);
        $('#live-announce').textContent = message;
        return;
      }
      l.retries = 0;
      l.engine = isObj(data.state) ? data.state : l.engine;
      setLiveConnection(true);
      if (isObj(data.state)) { pushLiveTrail(data.state); renderLive(data.state); }
      openLiveStream(gen);
    }));
  } catch (err) {
    if (gen !== l.gen) return;
    setLiveConnection(false, 'Not connected.');
    showError(region, err);
  }
  // The disabled button lost the keyboard: give it back, to Disconnect when that is what shows now.
  if (focused && gen === l.gen) (l.connected ? $('#live-disconnect') : button).focus();
}

function liveDisconnect() {
  const l = state.live;
  l.gen++;
  liveClose();
  setLiveConnection(false, 'Disconnected. Choose Connect to follow the engine again.');
  $('#live-connect').focus();
}

function openLiveStream(gen) {
  const l = state.live;
  if (typeof EventSource === 'undefined') {
    setLiveConnection(false, 'This browser cannot follow a stream of events, so the Live tab cannot follow the engine.');
    return;
  }
  const source = l.source = new EventSource('/api/live/events');
  source.addEventListener('message', (e) => {
    if (l.source !== source) return;
    let data;
    try { data = JSON.parse(e.data); } catch { return; }   // not JSON: the next event says it all again
    if (!isObj(data)) return;
    if (data.connected === false) {                  // the engine went away; the server ends the stream
      liveClose();
      setLiveConnection(false, liveMessage(data));
      return;
    }
    l.retries = 0;
    if (!isObj(data.state)) return;
    if (!l.connected) setLiveConnection(true);
    pushLiveTrail(data.state);
    renderLive(data.state);
  });
  // No engine (the request fails with 400) or the stream broke: EventSource would retry on its own,
  // forever; close it and ask GET /api/live why, which also has the sentence to show.
  source.addEventListener('error', () => {
    if (l.source !== source) return;
    liveClose();
    liveLost(gen);
  });
}

async function liveLost(gen) {
  const l = state.live;
  let data;
  try { data = await api('/api/live'); } catch (err) {
    if (gen === l.gen) setLiveConnection(false, err instanceof ApiError ? err.message : NETWORK_MESSAGE);
    return;
  }
  if (gen !== l.gen) return;                          // connected again, or disconnected, meanwhile
  if (isObj(data) && data.connected && l.retries < LIVE_RETRIES) {
    // The engine answers but the stream broke (the app restarted?): open it again in a second.
    l.retries += 1;
    if (isObj(data.state)) renderLive(data.state);
    l.retry = setTimeout(() => { if (gen === l.gen && !l.source) openLiveStream(gen); }, 1000);
    return;
  }
  setLiveConnection(false, isObj(data) && data.connected
    ? 'The live stream keeps breaking although the engine answers; choose Connect to try again.' : liveMessage(data));
}

/** Keep a fused reading for the trail, and forget those older than the trail. */
function pushLiveTrail(s) {
  const trail = state.live.trail, e = liveReading(s.emotion), now = performance.now() / 1000;
  if (e) trail.push({ t: now, v: e.valence, a: e.arousal, c: isNum(e.confidence) ? e.confidence : 0 });
  while (trail.length && now - trail[0].t > LIVE_TRAIL_S) trail.shift();
}

/** An EngineState (from the stream, GET /api/live or a POST's answer) everywhere it shows. */
function renderLive(s) {
  if (!isObj(s)) return;
  const l = state.live;
  l.engine = s;
  if (l.connected) $('#live-status').textContent = liveStatusText(s);
  const e = liveReading(s.emotion);
  $('#live-emotion').textContent = e
    ? `Now: ${e.label || 'unnamed'} · confidence ${pct(e.confidence)} · valence ${fmt(e.valence)}, arousal ${fmt(e.arousal)}, dominance ${fmt(e.dominance)}`
    : 'No reading yet.';
  renderLiveSources(s);
  renderLiveModels(s);
  renderLiveNumbers(s);
  renderLiveWarnings(s);
  drawLive();
  document.body.dataset.liveSeq = String(s.seq);
}

function renderLiveSources(s) {
  const sources = isObj(s) && isObj(s.sources) ? s.sources : {};
  const names = [...LIVE_SOURCES, ...Object.keys(sources).filter((n) => !LIVE_SOURCES.includes(n)).sort()];
  $('#live-sources').replaceChildren(...names.map((name) => {
    const e = liveReading(sources[name]);
    const words = e
      ? [e.label || 'unnamed', `valence ${fmt(e.valence)}, arousal ${fmt(e.arousal)}`, `confidence ${pct(e.confidence)}`,
        isNum(e.age_s) && `${e.age_s < 10 ? e.age_s.toFixed(1) : Math.round(e.age_s)} s ago`].filter(Boolean).join(' · ')
      : 'nothing yet';
    return h('li', { 'data-source': name, class: e ? null : 'muted' },
      h('span', { class: 'swatch', style: { background: liveColour(name) }, 'aria-hidden': 'true' }),
      h('span', { class: 'live-source-name' }, name), h('span', { class: 'live-source-reading' }, words));
  }));
}

/**
 * One labelled switch per model. The rows are only rebuilt when the set of models changes; otherwise
 * the boxes and badges are updated in place (rebuilt four times a second, they would lose focus and clicks).
 */
function renderLiveModels(s) {
  const l = state.live, list = $('#live-models');
  const models = isObj(s) && isObj(s.models) ? s.models : {};
  const names = Object.keys(models).sort();
  const key = isObj(s) ? names.join('\n') : null;
  if (list.dataset.names !== String(key)) {
    list.dataset.names = String(key);
    l.modelRows = new Map();
    list.replaceChildren(...names.map((name, i) => liveModelRow(name, i)));
    if (!names.length) list.append(h('li', { class: 'muted' }, isObj(s) ? 'The engine reported no models.' : 'Connect to see the engine’s models.'));
  }
  for (const name of names) {
    const row = l.modelRows.get(name), m = isObj(models[name]) ? models[name] : {};
    if (!row) continue;
    if (!l.toggling.has(name)) row.box.checked = !!m.enabled;
    const badge = m.live ? 'live' : 'fallback';
    row.badge.textContent = badge;
    row.badge.className = `train-badge live-badge live-badge-${badge}`;
    row.status.textContent = [m.status, m.path].filter(Boolean).join(' · ');
    row.li.dataset.live = String(!!m.live);
    row.li.dataset.enabled = String(!!m.enabled);
  }
}

function liveModelRow(name, i) {
  const id = `live-model-${i}`;
  const box = h('input', { type: 'checkbox', id, 'data-model': name });
  box.addEventListener('change', () => toggleLiveModel(name, box));
  const badge = h('span', { class: 'train-badge live-badge' });
  const status = h('span', { class: 'hint live-model-status' });
  const li = h('li', { 'data-model': name },
    h('span', { class: 'check' }, box, h('label', { for: id }, name)), badge, status);
  state.live.modelRows.set(name, { li, box, badge, status });
  return li;
}

async function toggleLiveModel(name, box) {
  const l = state.live, region = $('#live-error'), enabled = box.checked;
  clearError(region);
  // Not disabled meanwhile (that would drop the keyboard's focus): the stream just leaves the box alone.
  l.toggling.add(name);
  box.setAttribute('aria-busy', 'true');
  try {
    await withBusy(async () => {
      const s = await api(`/api/live/models/${encodeURIComponent(name)}`, { method: 'POST', json: { enabled } });
      l.toggling.delete(name);
      renderLive(s);
      $('#live-announce').textContent = `${name} ${enabled ? 'switched on' : 'switched off'}.`;
    });
  } catch (err) {
    box.checked = !enabled;                          // the box shows what the engine has, not the wish
    showError(region, err);
  } finally {
    l.toggling.delete(name);
    box.removeAttribute('aria-busy');
  }
}

function renderLiveNumbers(s) {
  const latency = isNum(s.latency_samples) && isNum(s.sample_rate) && s.sample_rate > 0
    ? `${((s.latency_samples / s.sample_rate) * 1000).toFixed(1)} ms` : '–';
  for (const [key] of LIVE_NUMBERS) {
    const dd = $(`#live-numbers dd[data-key="${key}"]`);
    if (dd) dd.textContent = key === 'latency' ? latency : (isNum(s[key]) ? String(s[key]) : '–');
  }
  $('#live-meta').textContent = [
    s.clock && `${s.clock} clock`, isNum(s.time_s) && `engine time ${durationText(s.time_s * 1000)}`,
    isNum(s.sample_rate) && `${s.sample_rate} Hz`, isNum(s.block) && `blocks of ${s.block} samples`,
    `MIDI out: ${s.midi_out || 'none'}`,
  ].filter(Boolean).join(' · ');
}

function renderLiveWarnings(s) {
  const list = $('#live-warnings');
  const warnings = isObj(s) && Array.isArray(s.warnings) ? s.warnings.map(String) : [];
  const key = isObj(s) ? JSON.stringify(warnings) : '';
  if (list.dataset.key === key) return;              // the same list: leave it (it may be being read)
  list.dataset.key = key;
  list.replaceChildren(...warnings.map((w) => h('li', {}, w)));
  if (!warnings.length) list.append(h('li', { class: 'muted' }, isObj(s) ? 'None.' : 'Connect to see the engine’s warnings.'));
}

/** The point to send (the ring on the plane), from a click or the arrow keys. */
function setLiveTarget(v, a) {
  const l = state.live, plane = $('#live-plane');
  l.target = { v: round2(clamp(v, -1, 1)), a: round2(clamp(a, 0, 1)) };
  const text = `valence ${fmt(l.target.v)}, arousal ${fmt(l.target.a)}`;
  plane.setAttribute('aria-valuenow', String(l.target.v));
  plane.setAttribute('aria-valuetext', text);
  plane.dataset.valence = String(l.target.v);
  plane.dataset.arousal = String(l.target.a);
  const near = nearestEmotion(l.target.v, l.target.a);
  $('#live-target').textContent = `Point to set: ${text}${near ? ` · near “${near.name}”` : ''}`;
  drawLive();
}

/** POST the ring's point with the dominance; while one is on its way, the newest point follows it. */
async function sendLiveEmotion() {
  const l = state.live, region = $('#live-error');
  if (!l.target) {
    showError(region, new FormError('Click a point on the plane, or move the ring with the arrow keys, first.'));
    return;
  }
  if (l.sending) { l.again = true; return; }
  l.sending = true;
  clearError(region);
  try {
    do {
      l.again = false;
      const body = { valence: l.target.v, arousal: l.target.a, dominance: round2(Number($('#live-dominance').value)) };
      const s = await withBusy(() => api('/api/live/emotion', { method: 'POST', json: body }));
      renderLive(s);
      $('#live-announce').textContent = `Emotion set: valence ${fmt(body.valence)}, arousal ${fmt(body.arousal)}, dominance ${fmt(body.dominance)}.`;
    } while (l.again);
  } catch (err) { showError(region, err); }
  finally { l.sending = false; }
}

async function sendLiveText() {
  const input = $('#live-text'), region = $('#live-error'), out = $('#live-text-read');
  const text = input.value.trim();
  clearError(region);
  if (!text) { showError(region, new FormError('Write a few words first.')); input.focus(); return; }
  try {
    await withButton($('#live-text-send'), 'Sending…', () => withBusy(async () => {
      const data = await api('/api/live/text', { method: 'POST', json: { text } });
      const read = isObj(data) && typeof data.read === 'string' && data.read ? data.read : null;
      // The engine answers a sentence ("read as fury (valence -0.70, …)"); a bare name is quoted.
      const said = read && /^read as\b/i.test(read) ? read : read && `read as “${read}”`;
      out.textContent = said ? said.charAt(0).toUpperCase() + said.slice(1) : 'The engine read no emotion in those words.';
      out.dataset.read = read || '';
      if (isObj(data) && isObj(data.state)) renderLive(data.state);
    }));
  } catch (err) { showError(region, err); }
}

/** Once, when the tab is first shown: say whether an engine is there, before anyone presses Connect. */
async function probeLive() {
  const l = state.live, gen = l.gen;
  l.probed = true;
  try {
    await withBusy(async () => {
      const data = await api('/api/live');
      if (gen !== l.gen || l.connected) return;     // Connect was pressed meanwhile: it has the say
      if (isObj(data) && data.connected) {
        if (isObj(data.state)) renderLive(data.state);
        $('#live-status').textContent = `An engine is listening${data.socket ? ` at ${data.socket}` : ''}; choose Connect to follow it.`;
      } else $('#live-status').textContent = liveMessage(data);
    });
  } catch (err) { if (gen === l.gen) showError($('#live-error'), err); }
}

function drawLive() {
  const canvas = $('#live-plane'), l = state.live;
  const ready = squareCanvas(canvas);
  if (!ready) return;                                // hidden tab: drawn again when shown
  const { ctx, size } = ready;
  const { x, y } = drawVAGrid(ctx, size);
  const s = isObj(l.engine) ? l.engine : null;

  // The trail: the fused readings of the last 40 s, fading with age.
  const now = performance.now() / 1000, trail = l.trail;
  ctx.lineWidth = 2; ctx.lineCap = 'round';
  for (let i = 1; i < trail.length; i++) {
    const p = trail[i - 1], q = trail[i], fade = 1 - (now - q.t) / LIVE_TRAIL_S;
    if (fade <= 0) continue;
    ctx.strokeStyle = `rgba(31, 95, 139, ${(0.55 * fade).toFixed(3)})`;
    ctx.beginPath(); ctx.moveTo(x(p.v), y(p.a)); ctx.lineTo(x(q.v), y(q.a)); ctx.stroke();
  }

  // The fused emotion: larger and more opaque the more confident; its name and confidence go on top of
  // everything (after the sources and the ring, which it would otherwise hide).
  const e = liveReading(s && s.emotion);
  const c = e ? clamp(isNum(e.confidence) ? e.confidence : 0, 0, 1) : 0, px = e ? x(e.valence) : 0, py = e ? y(e.arousal) : 0;
  if (e) {
    ctx.globalAlpha = 0.3 + 0.7 * c;
    ctx.beginPath(); ctx.arc(px, py, 5 + 9 * c, 0, Math.PI * 2);
    ctx.fillStyle = '#1f5f8b'; ctx.fill();
    ctx.lineWidth = 3; ctx.strokeStyle = '#ffffff'; ctx.stroke();
    ctx.globalAlpha = 1;
  }

  // Each source: a small square in its colour, named, fainter when unsure.
  ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'middle';
  for (const [name, reading] of Object.entries(s && isObj(s.sources) ? s.sources : {})) {
    const src = liveReading(reading);
    if (!src) continue;
    const sx = x(src.valence), sy = y(src.arousal), colour = liveColour(name);
    ctx.globalAlpha = 0.45 + 0.55 * clamp(isNum(src.confidence) ? src.confidence : 0, 0, 1);
    ctx.fillStyle = colour; ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.rect(sx - 4.5, sy - 4.5, 9, 9); ctx.fill(); ctx.stroke();
    const left = sx > size - 70;
    ctx.textAlign = left ? 'right' : 'left';
    ctx.lineWidth = 3; ctx.strokeText(name, sx + (left ? -8 : 8), sy);
    ctx.fillText(name, sx + (left ? -8 : 8), sy);
    ctx.globalAlpha = 1;
  }

  // The point to send: a ring with a cross.
  if (l.target) {
    const tx = x(l.target.v), ty = y(l.target.a);
    ctx.strokeStyle = '#222222'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(tx, ty, 10, 0, Math.PI * 2); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(tx - 15, ty); ctx.lineTo(tx - 6, ty); ctx.moveTo(tx + 6, ty); ctx.lineTo(tx + 15, ty);
    ctx.moveTo(tx, ty - 15); ctx.lineTo(tx, ty - 6); ctx.moveTo(tx, ty + 6); ctx.lineTo(tx, ty + 15); ctx.stroke();
  }

  if (e) {
    const label = `${e.label || 'unnamed'} · ${pct(c)}`;
    ctx.font = '600 13px system-ui, sans-serif';
    const w = ctx.measureText(label).width, r = 5 + 9 * c + 6;
    const left = px + r + w > size - 4;
    const ly = clamp(py - r, 10, size - 10);
    ctx.textAlign = left ? 'right' : 'left'; ctx.textBaseline = 'middle';
    ctx.lineWidth = 4; ctx.strokeStyle = '#ffffff'; ctx.strokeText(label, px + (left ? -r : r), ly);
    ctx.fillStyle = '#1d232b'; ctx.fillText(label, px + (left ? -r : r), ly);
  } else {
    ctx.font = '13px system-ui, sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.fillStyle = '#56606b';
    ctx.fillText(s ? 'The engine has no reading yet.' : 'Connect to see the engine’s emotion.', size / 2, size / 2 - 16);
  }
}

// --------------------------------------------------------------------------- init
async function loadHealth() {
  try {
    await withBusy(async () => {
      const data = await api('/api/health');
      $('#app-status').textContent = data && data.version ? `Kelly ${data.version}` : 'Connected';
    });
  } catch (err) {
    $('#app-status').textContent = 'Not connected';
    showError($('#app-error'), err);
  }
}

export function init() {
  document.body.dataset.state = 'ready';
  initTabs();
  initPad();
  initCompose();
  initLibrary();
  initAnalyze();
  initModels();
  initTraining();
  initLive();
  const start = location.hash.slice(1);
  activateTab(TABS.includes(start) ? start : 'compose');
  loadHealth();
  loadEmotions();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
}
