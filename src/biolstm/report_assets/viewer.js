// The report's gate viewer: a heatmap of one gate of one example; hover shows step, bases, value.
(function(){
  const data = JSON.parse(document.getElementById('gate-data').textContent);
  if (!data.examples || !data.examples.length) return;
  const ex = document.getElementById('ex'), gate = document.getElementById('gate');
  const cv = document.getElementById('heat'), tip = document.getElementById('tip');
  data.examples.forEach((e, i) => ex.add(new Option(e.id + ' (output ' + e.output.toFixed(2) + ')', i)));
  Object.keys(data.examples[0].gates).forEach(g => gate.add(new Option(g, g)));
  const cell = 8;
  function color(v, signed, lim) {
    if (signed) { const t = Math.max(-1, Math.min(1, v / lim));
      const r = t > 0 ? 255 : Math.round(255 * (1 + t)), b = t < 0 ? 255 : Math.round(255 * (1 - t));
      const g = Math.round(255 * (1 - Math.abs(t))); return 'rgb(' + r + ',' + g + ',' + b + ')'; }
    const t = Math.max(0, Math.min(1, v)); return 'rgb(' + Math.round(68 + 185 * t) + ',' + Math.round(1 + 230 * t) + ',' + Math.round(84 + 40 * t) + ')';
  }
  function draw() {
    const e = data.examples[ex.value], g = gate.value, m = e.gates[g];
    const T = m.length, H = m[0].length, signed = ['g','n','c','h'].includes(g);
    let lim = 1e-9; m.forEach(r => r.forEach(v => lim = Math.max(lim, Math.abs(v))));
    cv.width = T * cell; cv.height = H * cell;
    const ctx = cv.getContext('2d');
    for (let t = 0; t < T; t++) for (let u = 0; u < H; u++) { ctx.fillStyle = color(m[t][u], signed, lim); ctx.fillRect(t * cell, u * cell, cell, cell); }
    tip.textContent = 'gate ' + g + ': ' + T + ' steps x ' + H + ' units; hover for values';
  }
  cv.addEventListener('mousemove', ev => {
    const r = cv.getBoundingClientRect(), e = data.examples[ex.value], m = e.gates[gate.value];
    const t = Math.floor((ev.clientX - r.left) * cv.width / r.width / cell), u = Math.floor((ev.clientY - r.top) * cv.height / r.height / cell);
    if (t < 0 || u < 0 || t >= m.length || u >= m[0].length) return;
    const stride = e.bases ? Math.max(1, Math.floor(e.bases.length / m.length)) : 1;
    const base = e.bases ? e.bases.slice(t * stride, (t + 1) * stride) : '';
    tip.textContent = 'step ' + (t + 1) + (base ? ' (bases ' + (t * stride + 1) + '-' + ((t + 1) * stride) + ': ' + base + ')' : '') + ', unit ' + u + ', ' + gate.value + ' = ' + m[t][u].toFixed(3);
  });
  ex.addEventListener('change', draw); gate.addEventListener('change', draw); draw();
})();
