// bgpfabric sim live view. The graph is drawn by the server (SVG); this
// script only applies the server's events to it: each node and edge
// event carries the element's classes and label, so the page decides
// nothing about colours. Events arrive over server-sent events; the page
// never polls. A snapshot comes first, and again whenever this page fell
// behind: events numbered at or below the snapshot's are ignored.
'use strict';
(function () {
  let seq = 0;
  let selected = null;
  const $ = (id) => document.getElementById(id);

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function row(tbody, index) {
    let tr = tbody.rows[index];
    if (!tr) {
      while (tbody.rows.length <= index) tbody.appendChild(document.createElement('tr'));
      tr = tbody.rows[index];
    }
    tr.textContent = '';
    return tr;
  }

  function secs(x) { return (x || 0).toFixed(2) + 's'; }

  function setCheck(i, c) {
    const tr = row($('checks'), i);
    cell(tr, c.name); cell(tr, c.kind); cell(tr, c.status, 'status-' + c.status);
    cell(tr, c.probes || 0); cell(tr, secs(c.seconds));
    cell(tr, [c.message || ''].concat(c.failures || []).filter(Boolean).join('; '));
  }

  function setFault(i, f) {
    const tr = row($('faults'), i);
    cell(tr, f.name); cell(tr, f.action); cell(tr, f.target || ''); cell(tr, f.status, 'status-' + f.status);
    cell(tr, secs(f.seconds)); cell(tr, secs(f.reconverge_seconds));
    cell(tr, f.sessions_lost || 0); cell(tr, f.routes_withdrawn || 0);
    cell(tr, f.longest_stall_seconds == null ? '-' : secs(f.longest_stall_seconds));
    cell(tr, [f.detail, f.message].filter(Boolean).join('; '));
  }

  function setEntry(i, t) {
    const tr = row($('timeline'), i);
    cell(tr, '+' + secs(t.at)); cell(tr, t.kind); cell(tr, t.text, t.status ? 'status-' + t.status : '');
  }

  function setNode(n) {
    const g = $('node-' + n.name);
    if (!g) return;
    g.setAttribute('class', n.class + (selected === n.name ? ' selected' : ''));
    const label = g.querySelector('text.label');
    if (label) label.textContent = n.label;
    const label2 = g.querySelector('text.label2');
    if (label2) label2.textContent = n.label2;
  }

  function setEdge(e) {
    const el = $(e.id);
    if (!el) return;
    el.setAttribute('class', e.class);
    const t = el.querySelector('title');
    if (t) t.textContent = e.title;
  }

  function setPhase(phase, progress) {
    $('phase').textContent = phase || '';
    $('progress').textContent = progress || '';
  }

  function fillTable(id, items, fn) {
    const tbody = $(id);
    while (tbody.rows.length > items.length) tbody.deleteRow(-1);
    items.forEach((x, i) => fn(i, x));
  }

  function applySnapshot(s) {
    seq = s.seq;
    $('fabric').textContent = s.fabric || '';
    $('run').textContent = s.run_id || '';
    const svg = $('graph');
    const have = svg ? svg.getAttribute('data-graph') : '';
    const rest = () => {
      (s.nodes || []).forEach(setNode);
      (s.edges || []).forEach(setEdge);
    };
    if (have !== s.graph) {
      // The drawing changed (the run booted): fetch it once.
      fetch('graph.svg').then((r) => r.text()).then((text) => {
        $('graph-wrap').innerHTML = text;
        bindGraph();
        rest();
      }).catch((err) => { $('conn').textContent = 'graph: ' + err; });
    } else {
      rest();
    }
    fillTable('checks', s.checks || [], setCheck);
    fillTable('faults', s.faults || [], setFault);
    fillTable('timeline', s.timeline || [], setEntry);
    setPhase(s.phase, s.progress);
  }

  function apply(e) {
    if (e.type === 'snapshot') { applySnapshot(e.snapshot); return; }
    if (e.seq <= seq) return;
    seq = e.seq;
    switch (e.type) {
      case 'node': setNode(e.node); if (selected === e.node.name) showDetail(selected); break;
      case 'edge': setEdge(e.edge); break;
      case 'check': setCheck(e.index, e.check); break;
      case 'fault': setFault(e.index, e.fault); break;
      case 'timeline': setEntry(e.index, e.entry); break;
      case 'phase': setPhase(e.phase, e.progress); break;
    }
  }

  function table(parent, head, rows) {
    const t = document.createElement('table');
    const tr = t.createTHead().insertRow();
    head.forEach((h) => { const th = document.createElement('th'); th.textContent = h; tr.appendChild(th); });
    const body = t.createTBody();
    rows.forEach((r) => { const x = body.insertRow(); r.forEach((v) => cell(x, v)); });
    parent.appendChild(t);
  }

  function showDetail(name) {
    fetch('api/node?name=' + encodeURIComponent(name)).then((r) => {
      if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
      return r.json();
    }).then((d) => {
      if (selected !== name) return;
      $('detail-title').textContent = 'Node ' + name;
      $('detail-hint').textContent = d.node.label + (d.node.label2 ? ' · ' + d.node.label2 : '');
      const body = $('detail-body');
      body.textContent = '';
      const h = (text) => { const x = document.createElement('h3'); x.textContent = text; body.appendChild(x); };
      h('Sessions');
      table(body, ['peer', 'AS', 'type', 'state', 'since', 'accepted', 'advertised'],
        (d.sessions || []).map((p) => [p.peer_ip, p.as, p.type, p.state, p.since || '', p.prefixes_accepted || 0, p.prefixes_advertised || 0]));
      h('Routes (' + (d.routes || []).length + ')');
      table(body, ['destination', 'via', 'dev', 'proto', 'type'],
        (d.routes || []).map((r) => [r.dst, (r.gateways || []).join(', '), r.dev || '', r.protocol, r.type || '']));
      h('Log');
      const pre = document.createElement('pre');
      pre.textContent = d.log_tail || '';
      body.appendChild(pre);
      (d.errors || []).forEach((e) => { const p = document.createElement('p'); p.textContent = e; body.appendChild(p); });
    }).catch((err) => { $('detail-hint').textContent = 'could not read ' + name + ': ' + err.message; });
  }

  function select(name) {
    const prev = selected && $('node-' + selected);
    if (prev) prev.classList.remove('selected');
    selected = name;
    const g = $('node-' + name);
    if (g) g.classList.add('selected');
    showDetail(name);
  }

  function bindGraph() {
    document.querySelectorAll('#graph .node').forEach((g) => {
      const name = g.getAttribute('data-node');
      g.addEventListener('click', () => select(name));
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') select(name); });
    });
  }

  bindGraph();
  const es = new EventSource('events');
  es.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'meta live'; };
  es.onerror = () => { $('conn').textContent = 'disconnected (the run ended?), reconnecting…'; $('conn').className = 'meta lost'; };
  ['snapshot', 'node', 'edge', 'check', 'fault', 'timeline', 'phase'].forEach((type) => {
    es.addEventListener(type, (m) => apply(JSON.parse(m.data)));
  });
})();
