'use strict';
(function () {
  const POLL_MS = 5000, TIMEOUT_MS = 4000;
  const STATE_ORDER = { down: 0, partial: 1, waiting: 2, up: 3 };
  const STATE_TEXT = { down: 'DOWN', partial: 'PARTIAL', waiting: 'waiting', up: 'up' };
  let data = null;          // the last status.json
  let fetchedAt = 0;        // Date.now() when it arrived
  let failingSince = 0;     // Date.now() of the first failed poll in a row, 0 while polls succeed
  let failure = '';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const filter = { q: params.get('q') || '', cls: params.get('class') || '', problems: params.get('problems') === '1' };

  // Every element with data from the gateway is made here: text goes through textContent, never HTML.
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clock(ms) { return new Date(ms).toLocaleTimeString(); }

  function ago(seconds) {
    if (!(seconds >= 0)) seconds = 0;
    if (seconds < 90) return Math.round(seconds) + ' s ago';
    if (seconds < 90 * 60) return Math.round(seconds / 60) + ' min ago';
    if (seconds < 48 * 3600) return Math.round(seconds / 3600) + ' h ago';
    return Math.round(seconds / 86400) + ' d ago';
  }

  function rtt(seconds) {
    if (typeof seconds !== 'number') return '';
    if (seconds < 0.001) return (seconds * 1000).toFixed(3) + ' ms';
    if (seconds < 1) return (seconds * 1000).toFixed(1) + ' ms';
    return seconds.toFixed(2) + ' s';
  }

  // Seconds between a gateway timestamp and now, on the gateway's clock (the laptop's may be off).
  function secondsSince(unix) { return data.now - unix + (Date.now() - fetchedAt) / 1000; }

  function checkName(check) {
    const t = check.target || {};
    let name = check.scraper;
    if (t.port !== undefined) name += ' ' + t.port + (t.protocol !== undefined ? '/' + t.protocol : '');
    for (const k of Object.keys(t))
      if (k !== 'port' && k !== 'protocol') name += ' ' + k + '=' + t[k];
    return name;
  }

  // "Modem up, meter dead" (status.json's diagnosis): the modem answers ping or accepts the port, the meter's
  // own protocol (modbus, mqtt, coap) timed out. Which checks say so, for the row's explanation.
  const MODEM_SCRAPERS = ['ping', 'port'], METER_SCRAPERS = ['modbus', 'mqtt', 'coap'];
  const modemCheck = (check) => check.up && MODEM_SCRAPERS.includes(check.scraper);
  const meterCheck = (check) => !check.up && check.reason === 'timeout' && METER_SCRAPERS.includes(check.scraper);

  function diagnosisLine(dev) {
    const modem = dev.checks.filter(modemCheck).map(checkName);
    const meter = dev.checks.filter(meterCheck).map(checkName);
    const line = el('div', 'diagnosis');
    line.append(el('span', 'diagnosis-name', 'modem up, meter dead'), ' ');
    line.append(el('span', 'diagnosis-why', modem.join(', ') + (modem.length === 1 ? ' answers' : ' answer') +
                                            '; ' + meter.join(', ') + ' never answered (timeout)'));
    return line;
  }

  // One row per device of every config: [{cls, device, state, order}] sorted down first.
  function rowsOf(d) {
    const rows = [];
    let order = 0;
    for (const c of d.configs) {
      for (const dev of (c.devices || []))
        rows.push({ cls: c.prom_id, config: c, device: dev, state: dev.state, order: order++ });
    }
    rows.sort((a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || (a.order - b.order));
    return rows;
  }

  function matches(row) {
    if (filter.cls && row.cls !== filter.cls) return false;
    if (filter.problems && (row.state === 'up' || row.state === 'waiting')) return false;
    if (filter.q) {
      const q = filter.q.toLowerCase();
      const hay = (row.device.name + '\n' + row.device.address).toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return true;
  }

  function writeUrl() {
    const p = new URLSearchParams();
    if (filter.q) p.set('q', filter.q);
    if (filter.cls) p.set('class', filter.cls);
    if (filter.problems) p.set('problems', '1');
    const s = p.toString();
    history.replaceState(null, '', s ? '?' + s : location.pathname);
  }

  function classNames() {
    const names = new Set();
    if (data) for (const c of data.configs) names.add(c.prom_id);
    if (filter.cls) names.add(filter.cls);
    return Array.from(names).sort();
  }

  let shownClasses = null;   // the class names in the select, to rebuild it only when they change

  function renderClassSelect() {
    const select = $('class');
    const key = JSON.stringify(classNames());
    if (key === shownClasses) {
      select.value = filter.cls;
      return;
    }
    shownClasses = key;
    const options = [el('option', null, 'All classes')];
    options[0].value = '';
    for (const name of classNames()) {
      const o = el('option', null, name);
      o.value = name;
      options.push(o);
    }
    select.replaceChildren(...options);
    select.value = filter.cls;
  }

  function countPill(state, n) {
    return el('span', 'count ' + state + (n === 0 ? ' zero' : ''), n + ' ' + (state === 'partial' ? 'partial' : state));
  }

  function renderSummary() {
    const cards = [];
    const byClass = new Map();
    for (const c of data.configs) {
      let s = byClass.get(c.prom_id);
      if (!s) byClass.set(c.prom_id, s = { up: 0, partial: 0, down: 0, waiting: 0, meterDead: 0, lastCycle: null });
      if (!c.devices) s.waiting += c.jobs;
      for (const dev of (c.devices || [])) {
        s[dev.state]++;
        if (dev.diagnosis === 'modem_up_meter_dead') s.meterDead++;
      }
      if (c.last_cycle_end !== null && (s.lastCycle === null || c.last_cycle_end > s.lastCycle))
        s.lastCycle = c.last_cycle_end;
    }
    const all = { up: 0, partial: 0, down: 0, waiting: 0, meterDead: 0 };
    for (const s of byClass.values()) for (const k of Object.keys(all)) all[k] += s[k];
    const card = (cls, title, s, age) => {
      const b = el('button', 'class-card' + (filter.cls === cls ? ' selected' : ''));
      b.type = 'button';
      b.dataset.class = cls;
      b.append(el('div', 'name', title));
      const counts = el('div', 'counts');
      counts.append(countPill('down', s.down), countPill('partial', s.partial), countPill('up', s.up));
      if (s.waiting) counts.append(el('span', 'count', s.waiting + ' waiting'));
      if (s.meterDead) counts.append(el('span', 'count meter-dead', s.meterDead + ' modem up, meter dead'));
      b.append(counts);
      const total = s.up + s.partial + s.down + s.waiting;
      b.append(el('div', 'age', total + (total === 1 ? ' device' : ' devices') + (age ? ' \u00b7 ' + age : '')));
      b.addEventListener('click', () => { filter.cls = filter.cls === cls ? '' : cls; writeUrl(); render(); });
      return b;
    };
    cards.push(card('', 'All classes', all, ''));
    document.title = (all.down ? all.down + ' down \u2013 ' : '') + 'fleetprobe status';
    for (const name of Array.from(byClass.keys()).sort()) {
      const s = byClass.get(name);
      cards.push(card(name, name, s, s.lastCycle === null ? 'first cycle running' : 'cycle ' + ago(secondsSince(s.lastCycle))));
    }
    $('summary').replaceChildren(...cards);
  }

  function renderRows() {
    const rows = rowsOf(data);
    const out = [];
    let shown = 0;
    for (const row of rows) {
      if (!matches(row)) continue;
      ++shown;
      const dev = row.device;
      const tr = el('tr', row.state);
      tr.dataset.device = dev.name;
      tr.dataset.class = row.cls;
      tr.dataset.state = row.state;
      if (dev.diagnosis) tr.dataset.diagnosis = dev.diagnosis;
      const state = el('td', 'state', STATE_TEXT[row.state] || row.state);
      const name = el('td', 'name');
      name.append(el('div', 'device', dev.name), el('div', 'address', dev.address));
      const cls = el('td', 'cls', row.cls);
      const checks = el('td', 'checks-cell');
      const meterDead = dev.diagnosis === 'modem_up_meter_dead';
      if (meterDead) checks.append(diagnosisLine(dev));
      const list = el('ul', 'checks');
      for (const check of dev.checks) {
        const li = el('li', (check.up ? 'check-up' : 'check-down') + (meterDead && meterCheck(check) ? ' meter-dead' : ''));
        li.append(el('span', 'check-name', checkName(check)), ' ');
        li.append(el('span', 'check-result', check.up ? (check.last_rtt_seconds !== null ? rtt(check.last_rtt_seconds) : 'up')
                                                      : (check.reason || 'down')));
        if (!check.up && check.detail) li.append(' ', el('span', 'detail', check.detail));
        list.append(li);
      }
      checks.append(list);
      const seen = el('td', 'seen', dev.last_seen === null ? 'never' : ago(secondsSince(dev.last_seen)));
      if (dev.last_seen !== null) seen.title = new Date(dev.last_seen * 1000).toLocaleString();
      tr.append(state, name, cls, checks, seen);
      out.push(tr);
    }
    $('rows').replaceChildren(...out);
    let waiting = 0;
    for (const c of data.configs) if (!c.devices) waiting += c.jobs;
    $('shown').textContent = shown + ' of ' + rows.length + ' devices shown';
    $('empty').textContent = shown ? '' : (rows.length ? 'No device matches the filter.'
                                                       : waiting ? 'Waiting for the first cycle of ' + waiting + ' device(s).'
                                                                 : 'No device configured.');
  }

  // --- Online windows (issue 18): the planning list, one row per device sorted by its next window. ---
  const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function windowText(w) {
    const current = w.start <= data.now;
    return (current ? 'current window: ' : 'next window: ') + w.start_local + '\u2013' + w.end_local +
      ' (p = ' + w.probability.toFixed(2) + ')';
  }

  function heatmap(profile) {
    const grid = el('div', 'heat');
    grid.setAttribute('role', 'img');
    let label = 'Week profile';
    for (let day = 0; day < 7; ++day) {
      const line = el('div', 'heat-day');
      line.append(el('span', 'heat-name', DAYS[day]));
      for (let h = 0; h < 24; ++h) {
        const i = day * 24 + h, p = profile.hours[i];
        const cell = el('i', p === null ? 'none' : (p >= 0.5 ? 'on' : 'off'));
        if (p !== null) cell.style.setProperty('--p', String(p));
        cell.title = DAYS[day] + ' ' + String(h).padStart(2, '0') + ':00 ' +
          (p === null ? 'no cycle yet' : 'p = ' + p.toFixed(2) + ' (' + profile.probes[i] + ' cycles)');
        line.append(cell);
      }
      grid.append(line);
    }
    if (profile.window) label += ', ' + windowText(profile.window);
    grid.setAttribute('aria-label', label);
    return grid;
  }

  function renderPlanning() {
    const rows = [];
    for (const c of data.configs) {
      if (!c.profile) continue;
      const addresses = new Map((c.devices || []).map((dev) => [dev.name, dev.address]));
      for (const p of c.profile.devices) {
        const address = addresses.get(p.name) || '';
        if (filter.cls && c.prom_id !== filter.cls) continue;
        if (filter.q && !(p.name + '\n' + address).toLowerCase().includes(filter.q.toLowerCase())) continue;
        rows.push({ cls: c.prom_id, tz: c.profile.timezone, p: p, address: address });
      }
    }
    rows.sort((a, b) => (a.p.window ? 0 : 1) - (b.p.window ? 0 : 1) ||
                        (a.p.window && b.p.window ? a.p.window.start - b.p.window.start : 0) ||
                        a.p.name.localeCompare(b.p.name));
    const out = rows.map((row) => {
      const tr = el('tr', row.p.window ? 'has-window' : 'no-window');
      tr.dataset.device = row.p.name;
      tr.dataset.class = row.cls;
      if (row.p.window) tr.dataset.windowStart = String(row.p.window.start);
      const next = el('td', 'window', row.p.window ? windowText(row.p.window) : 'no window known yet');
      next.append(el('div', 'muted', row.tz + ' \u00b7 ' + row.p.weeks.toFixed(1) + ' weeks of history' +
                                      (row.p.asleep ? ' \u00b7 asleep (probed less often)' : '')));
      const name = el('td', 'name');
      name.append(el('div', 'device', row.p.name), el('div', 'address', row.address));
      const now = el('td', 'now', row.p.probability === null ? '\u2013' : 'p = ' + row.p.probability.toFixed(2));
      const heat = el('td', 'heat-cell');
      heat.append(heatmap(row.p));
      tr.append(next, name, el('td', 'cls', row.cls), now, heat);
      return tr;
    });
    $('window-rows').replaceChildren(...out);
    $('planning').hidden = out.length === 0;
  }

  function renderStatus() {
    const banner = $('banner');
    if (failingSince) {
      banner.textContent = 'Gateway unreachable since ' + clock(failingSince) + ' (' + failure + ')' +
        (data ? ': showing the data of ' + clock(fetchedAt) + '.' : '.');
      banner.classList.add('show');
    } else {
      banner.textContent = '';
      banner.classList.remove('show');
    }
    $('refresh').textContent = data ? 'Updated ' + clock(fetchedAt) + ' (' + ago((Date.now() - fetchedAt) / 1000) + ')'
                                    : (failingSince ? 'No data' : 'Loading\u2026');
    document.body.dataset.gateway = failingSince ? 'unreachable' : (data ? 'ok' : 'loading');
  }

  function render() {
    renderClassSelect();
    renderStatus();
    if (!data) return;
    renderSummary();
    renderRows();
    renderPlanning();
    document.body.dataset.loaded = '1';
  }

  async function poll() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch('status.json', { cache: 'no-store', signal: abort.signal });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const d = await response.json();
      if (!d || !Array.isArray(d.configs)) throw new Error('unexpected answer');
      data = d;
      fetchedAt = Date.now();
      failingSince = 0;
      failure = '';
    } catch (e) {
      if (!failingSince) failingSince = Date.now();
      failure = e && e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : String(e && e.message || e);
    } finally {
      clearTimeout(timer);
    }
    render();
    setTimeout(poll, POLL_MS);
  }

  $('host').textContent = location.host;
  $('q').value = filter.q;
  $('problems').checked = filter.problems;
  $('q').addEventListener('input', () => { filter.q = $('q').value; writeUrl(); render(); });
  $('class').addEventListener('change', () => { filter.cls = $('class').value; writeUrl(); render(); });
  $('problems').addEventListener('change', () => { filter.problems = $('problems').checked; writeUrl(); render(); });
  setInterval(renderStatus, 1000);
  render();
  poll();
})();
