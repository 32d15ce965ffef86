// The report's gate viewer: a heatmap of one gate of one example, with axes (position in bp, or
// step, on x; unit on y) and a colour scale; hover shows the step, its bases and the value.
(function(){
  const data = JSON.parse(document.getElementById('gate-data').textContent);
  if (!data.examples || !data.examples.length) return;
  const ex = document.getElementById('ex'), gate = document.getElementById('gate');
  const cv = document.getElementById('heat'), tip = document.getElementById('tip');
  const NAMES = data.names || {};  // gate letter -> its name, from biolstm.interpret.explain.GATE_NAMES
  data.examples.forEach((e, i) => ex.add(new Option(e.id + ' (' + (e.output_what || 'output') + ' ' +
    (Math.abs(e.output) >= 1000 ? e.output.toExponential(2) : e.output.toPrecision(3)) + ')', i)));
  Object.keys(data.examples[0].gates).forEach(g => gate.add(new Option(NAMES[g] || g, g)));
  const left = 56, top = 8, bottom = 44, bar = 14, right = 70;
  let cw = 8, ch = 8;  // a cell's width and height in pixels, chosen per heatmap to fit the page
  function color(v, signed, lim) {
    if (signed) { const t = Math.max(-1, Math.min(1, v / lim));
      const r = t > 0 ? 255 : Math.round(255 * (1 + t)), b = t < 0 ? 255 : Math.round(255 * (1 - t));
      const g = Math.round(255 * (1 - Math.abs(t))); return 'rgb(' + r + ',' + g + ',' + b + ')'; }
    const t = Math.max(0, Math.min(1, v)); return 'rgb(' + Math.round(68 + 185 * t) + ',' + Math.round(1 + 230 * t) + ',' + Math.round(84 + 40 * t) + ')';
  }
  function state() {
    const e = data.examples[ex.value], g = gate.value, m = e.gates[g];
    const signed = ['g', 'n', 'c', 'h'].includes(g);
    let lim = 1e-9; m.forEach(r => r.forEach(v => lim = Math.max(lim, Math.abs(v))));
    return {e: e, g: g, m: m, T: m.length, H: m[0].length, signed: signed, lim: signed ? lim : 1,
            stride: e.bp_per_step || 0};
  }
  function draw() {
    const s = state();
    cw = Math.max(3, Math.min(16, Math.floor(960 / s.T))); ch = Math.max(4, Math.min(14, Math.floor(420 / s.H)));
    const W = s.T * cw, Hh = s.H * ch;
    cv.width = left + W + right; cv.height = top + Hh + bottom;
    const ctx = cv.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, cv.width, cv.height);
    for (let t = 0; t < s.T; t++) for (let u = 0; u < s.H; u++) {
      ctx.fillStyle = color(s.m[t][u], s.signed, s.lim); ctx.fillRect(left + t * cw, top + u * ch, cw, ch); }
    ctx.strokeStyle = '#333'; ctx.fillStyle = '#222'; ctx.font = '11px sans-serif'; ctx.lineWidth = 1;
    ctx.strokeRect(left - 0.5, top - 0.5, W + 1, Hh + 1);
    // x axis: base pairs when each step covers known bases, else steps
    const unit = s.stride ? s.stride : 1, span = s.T * unit;
    const want = Math.max(1, Math.round(span / Math.max(2, Math.floor(W / 70))));
    const nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000].find(v => v >= want) || want;
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (let p = 0; p <= span; p += nice) {
      const xpx = left + (p / unit) * cw; ctx.beginPath(); ctx.moveTo(xpx, top + Hh); ctx.lineTo(xpx, top + Hh + 4); ctx.stroke();
      ctx.fillText(String(p), xpx, top + Hh + 6); }
    ctx.fillText(s.stride ? 'position in the sequence (bp); one step = ' + s.stride + ' bp' : 'step', left + W / 2, top + Hh + 24);
    // y axis: units
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    const ystep = Math.max(1, Math.ceil(s.H / Math.max(1, Math.floor(Hh / 24))));
    for (let u = 0; u < s.H; u += ystep) ctx.fillText(String(u), left - 6, top + u * ch + ch / 2);
    ctx.save(); ctx.translate(14, top + Hh / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = 'center';
    ctx.fillText('unit', 0, 0); ctx.restore();
    // colour scale
    const bx = left + W + 12, lo = s.signed ? -s.lim : 0, hi = s.signed ? s.lim : 1;
    for (let k = 0; k < Hh; k++) { ctx.fillStyle = color(hi - (hi - lo) * k / Math.max(1, Hh - 1), s.signed, s.lim);
      ctx.fillRect(bx, top + k, bar, 1); }
    ctx.strokeRect(bx - 0.5, top - 0.5, bar + 1, Hh + 1); ctx.fillStyle = '#222'; ctx.textAlign = 'left';
    ctx.fillText(hi.toFixed(2), bx + bar + 4, top + 5); ctx.fillText(lo.toFixed(2), bx + bar + 4, top + Hh - 5);
    if (s.signed) ctx.fillText('0', bx + bar + 4, top + Hh / 2);
    tip.textContent = (s.e.layer ? s.e.layer + ', ' : '') + (NAMES[s.g] || s.g) + ': ' + s.T + ' steps x ' + s.H + ' units; hover for values';
  }
  cv.addEventListener('mousemove', ev => {
    const r = cv.getBoundingClientRect(), s = state();
    const px = (ev.clientX - r.left) * cv.width / r.width - left, py = (ev.clientY - r.top) * cv.height / r.height - top;
    const t = Math.floor(px / cw), u = Math.floor(py / ch);
    if (px < 0 || py < 0 || t >= s.T || u >= s.H) return;
    const stride = s.stride || (s.e.bases ? Math.max(1, Math.floor(s.e.bases.length / s.T)) : 1);
    const base = s.e.bases ? s.e.bases.slice(t * stride, (t + 1) * stride) : '';
    tip.textContent = 'step ' + (t + 1) + (base ? ' (bp ' + (t * stride + 1) + '-' + ((t + 1) * stride) + ': ' + base + ')' : '') +
      ', unit ' + u + ', ' + (NAMES[gate.value] || gate.value) + ' = ' + s.m[t][u].toFixed(3);
  });
  ex.addEventListener('change', draw); gate.addEventListener('change', draw); draw();
})();
