#include "http/StatusPage.h"

#include <Poco/Base64Encoder.h>
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace fleetprobe
{

namespace
{

// The page. Everything inline (the gateway has no internet); the data comes from status.json and reaches the
// DOM through textContent only. The script must stay the page's only <script> element: its hash is the
// Content-Security-Policy's script-src.
const char* const pageHead = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>fleetprobe status</title>
<style>
:root { --bg: #f6f7f9; --fg: #1b1f24; --muted: #5b6470; --card: #fff; --line: #d8dde3;
        --down: #b3261e; --down-bg: #fde7e5; --partial: #8a5300; --partial-bg: #fff1d6;
        --up: #1e6b34; --up-bg: #e3f4e7; --wait: #4a5563; --wait-bg: #eceff3; --accent: #1f5fbf; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171b; --fg: #e6e9ed; --muted: #9aa4b0; --card: #1d2127; --line: #343a42;
          --down: #ff8a80; --down-bg: #4a1d1a; --partial: #ffc266; --partial-bg: #3d2e12;
          --up: #7ddc95; --up-bg: #17331f; --wait: #b8c0ca; --wait-bg: #2a2f36; --accent: #7fb0ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 16px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
header { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line);
         padding: .6rem 1rem; display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; }
h1 { font-size: 1.2rem; margin: 0; }
#host { color: var(--muted); }
#refresh { margin-left: auto; color: var(--muted); font-size: .95rem; }
#banner { display: none; background: var(--down); color: #fff; padding: .6rem 1rem; font-weight: 600; }
#banner.show { display: block; }
main { padding: .8rem 1rem 2rem; max-width: 1400px; margin: 0 auto; }
#summary { display: flex; flex-wrap: wrap; gap: .6rem; margin-bottom: .8rem; }
.class-card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .8rem;
              min-width: 11rem; cursor: pointer; text-align: left; color: inherit; font: inherit; }
.class-card.selected { outline: 3px solid var(--accent); outline-offset: -1px; }
.class-card .name { font-weight: 700; overflow-wrap: anywhere; }
.class-card .counts { display: flex; gap: .4rem; flex-wrap: wrap; margin-top: .2rem; }
.class-card .age { color: var(--muted); font-size: .85rem; margin-top: .2rem; }
.count { border-radius: 1rem; padding: 0 .5rem; font-size: .9rem; font-weight: 600; white-space: nowrap; }
.count.down { background: var(--down-bg); color: var(--down); }
.count.partial { background: var(--partial-bg); color: var(--partial); }
.count.up { background: var(--up-bg); color: var(--up); }
.count.zero { opacity: .45; }
#filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin-bottom: .6rem; }
#filters input[type=search], #filters select { font: inherit; padding: .4rem .6rem; border: 1px solid var(--line);
       border-radius: .4rem; background: var(--card); color: var(--fg); min-height: 2.6rem; }
#q { flex: 1 1 14rem; max-width: 28rem; }
#filters label { display: flex; align-items: center; gap: .3rem; min-height: 2.6rem; }
#filters input[type=checkbox] { width: 1.2rem; height: 1.2rem; }
#shown { color: var(--muted); font-size: .95rem; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
tr.down td { background: var(--down-bg); }
tr.partial td { background: var(--partial-bg); }
tr.down td:first-child { box-shadow: inset 5px 0 0 var(--down); }
tr.partial td:first-child { box-shadow: inset 5px 0 0 var(--partial); }
.state { font-weight: 700; white-space: nowrap; }
tr.down .state { color: var(--down); }
tr.partial .state { color: var(--partial); }
tr.up .state { color: var(--up); }
tr.waiting .state { color: var(--wait); }
.device { font-weight: 600; overflow-wrap: anywhere; }
.address { color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
.checks { list-style: none; margin: 0; padding: 0; }
.checks li { white-space: normal; overflow-wrap: anywhere; }
.check-name { font-weight: 600; }
.check-down .check-result { color: var(--down); font-weight: 600; }
.check-up .check-result { color: var(--up); }
.detail { color: var(--muted); font-size: .85rem; }
.muted { color: var(--muted); }
#empty { padding: 1rem; color: var(--muted); }
@media (max-width: 720px) {
  body { font-size: 17px; }
  header { padding: .5rem .7rem; }
  #refresh { margin-left: 0; width: 100%; }
  main { padding: .6rem .5rem 2rem; }
  .class-card { flex: 1 1 45%; min-width: 0; }
  table, tbody { display: block; width: 100%; }
  thead { display: none; }
  table { border: 0; background: none; }
  tr { display: grid; grid-template-columns: 5.6rem minmax(0, 1fr); grid-template-areas: "state device" "checks checks" "cls seen";
       column-gap: .6rem; background: var(--card); border: 1px solid var(--line); border-radius: .5rem;
       margin-bottom: .5rem; padding: .45rem .7rem; overflow: hidden; }
  tr.down, tr.partial { padding-left: 1rem; }
  tr.down { background: var(--down-bg); box-shadow: inset 6px 0 0 var(--down); }
  tr.partial { background: var(--partial-bg); box-shadow: inset 6px 0 0 var(--partial); }
  td, tr.down td, tr.partial td, tr.down td:first-child, tr.partial td:first-child { display: block; border: 0; padding: .1rem 0; background: none; box-shadow: none; min-width: 0; }
  td.state { grid-area: state; }
  td.name { grid-area: device; }
  td.checks-cell { grid-area: checks; padding: .25rem 0; }
  td.cls { grid-area: cls; color: var(--muted); font-size: .9rem; }
  td.seen { grid-area: seen; text-align: right; font-size: .9rem; }
  td.seen::before { content: "last seen "; color: var(--muted); }
  .class-card { padding: .4rem .6rem; }
  .count { font-size: .85rem; }
}
</style>
</head>
<body>
<header>
  <h1>fleetprobe status</h1><span id="host"></span>
  <span id="refresh" role="status" aria-live="polite">Loading&#8230;</span>
</header>
<div id="banner" role="alert"></div>
<main>
  <section id="summary" aria-label="Devices per class"></section>
  <section id="filters" aria-label="Filter">
    <input id="q" type="search" placeholder="Filter by device name or address" aria-label="Filter by device name or address" autocomplete="off">
    <select id="class" aria-label="Class"><option value="">All classes</option></select>
    <label><input id="problems" type="checkbox"> Problems only</label>
    <span id="shown"></span>
  </section>
  <table id="devices">
    <thead><tr><th>State</th><th>Device</th><th>Class</th><th>Checks (last cycle)</th><th>Last seen</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <div id="empty"></div>
</main>
)HTML";

const char* const pageScript = R"JS(
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
      if (!s) byClass.set(c.prom_id, s = { up: 0, partial: 0, down: 0, waiting: 0, lastCycle: null });
      if (!c.devices) s.waiting += c.jobs;
      for (const dev of (c.devices || [])) s[dev.state]++;
      if (c.last_cycle_end !== null && (s.lastCycle === null || c.last_cycle_end > s.lastCycle))
        s.lastCycle = c.last_cycle_end;
    }
    const all = { up: 0, partial: 0, down: 0, waiting: 0 };
    for (const s of byClass.values()) for (const k of Object.keys(all)) all[k] += s[k];
    const card = (cls, title, s, age) => {
      const b = el('button', 'class-card' + (filter.cls === cls ? ' selected' : ''));
      b.type = 'button';
      b.dataset.class = cls;
      b.append(el('div', 'name', title));
      const counts = el('div', 'counts');
      counts.append(countPill('down', s.down), countPill('partial', s.partial), countPill('up', s.up));
      if (s.waiting) counts.append(el('span', 'count', s.waiting + ' waiting'));
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
      const state = el('td', 'state', STATE_TEXT[row.state] || row.state);
      const name = el('td', 'name');
      name.append(el('div', 'device', dev.name), el('div', 'address', dev.address));
      const cls = el('td', 'cls', row.cls);
      const checks = el('td', 'checks-cell');
      const list = el('ul', 'checks');
      for (const check of dev.checks) {
        const li = el('li', check.up ? 'check-up' : 'check-down');
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
)JS";

const char* const pageTail = "</body>\n</html>\n";

std::string number(double value)
{
    if (!std::isfinite(value))
        return "null";
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, r.ptr);
}

/// The length of the valid UTF-8 sequence at `s[i]` (1-4), or 0 when it is not one (overlong forms,
/// surrogates and code points above U+10FFFF are invalid).
std::size_t utf8Length(const std::string& s, std::size_t i)
{
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    std::size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80, cp = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800, cp = c & 0x0Fu;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000, cp = c & 0x07u;
    else
        return 0;
    if (i + n > s.size())
        return 0;
    for (std::size_t k = 1; k < n; ++k)
    {
        if ((byte(i + k) & 0xC0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void appendString(std::string& out, const std::string& text)
{
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < text.size();)
    {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const std::size_t n = utf8Length(text, i);
        if (n == 0)
        {
            out += "\\ufffd"; // one replacement per invalid byte
            ++i;
            continue;
        }
        if (n > 1)
        {
            // U+2028 and U+2029 are valid JSON but end a line in older JavaScript: escaped too.
            if (n == 3 && c == 0xE2 && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                (static_cast<unsigned char>(text[i + 2]) == 0xA8 ||
                 static_cast<unsigned char>(text[i + 2]) == 0xA9))
                out += static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
            else
                out.append(text, i, n);
            i += n;
            continue;
        }
        switch (c)
        {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            // Controls, DEL, and the HTML-significant <, >, & (the JSON stays inert wherever it ends up).
            if (c < 0x20 || c == 0x7F || c == '<' || c == '>' || c == '&')
            {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
            else
                out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
}

void appendLabels(std::string& out, const Labels& labels)
{
    out += '{';
    bool first = true;
    for (const auto& [name, value] : labels)
    {
        if (!first)
            out += ',';
        first = false;
        appendString(out, name);
        out += ':';
        appendString(out, value);
    }
    out += '}';
}

void appendOptionalString(std::string& out, const std::string& text)
{
    if (text.empty())
        out += "null";
    else
        appendString(out, text);
}

/// A Unix time, or null when it is 0 (never) or not finite.
std::string timestamp(double unix)
{
    return unix > 0 ? number(unix) : "null";
}

using DeviceStatus = ConfigRunner::DeviceStatus;

/// The devices of one config: consecutive series of the same job (the snapshot keeps them together).
void appendDevices(std::string& out, const std::vector<DeviceStatus>& series, std::size_t counts[3])
{
    out += '[';
    for (std::size_t i = 0; i < series.size();)
    {
        std::size_t end = i + 1;
        while (end < series.size() && series[end].device == series[i].device &&
               series[end].address == series[i].address)
            ++end;
        std::size_t up = 0;
        double lastSeen = 0;
        for (std::size_t k = i; k < end; ++k)
        {
            up += series[k].up ? 1 : 0;
            if (std::isfinite(series[k].lastSeenUnix))
                lastSeen = std::max(lastSeen, series[k].lastSeenUnix);
        }
        const std::size_t state = up == end - i ? 0 : up == 0 ? 2 : 1;
        ++counts[state];
        static const char* const states[] = {"up", "partial", "down"};
        if (i > 0)
            out += ',';
        out += "{\"name\":";
        appendString(out, series[i].device);
        out += ",\"address\":";
        appendString(out, series[i].address);
        out += ",\"labels\":";
        appendLabels(out, series[i].labels);
        out += ",\"state\":\"";
        out += states[state];
        out += "\",\"last_seen\":" + timestamp(lastSeen);
        out += ",\"checks\":[";
        for (std::size_t k = i; k < end; ++k)
        {
            const DeviceStatus& s = series[k];
            if (k > i)
                out += ',';
            out += "{\"scraper\":";
            appendString(out, s.scraper);
            out += ",\"target\":";
            appendLabels(out, s.target);
            out += ",\"up\":";
            out += s.up ? "true" : "false";
            out += ",\"reason\":";
            appendOptionalString(out, s.up               ? std::string()
                                      : s.reason.empty() ? std::string("error")
                                                         : s.reason);
            out += ",\"detail\":";
            appendOptionalString(out, s.up ? std::string() : s.detail);
            out += ",\"last_rtt_seconds\":";
            out += s.up && s.lastRttSeconds >= 0 ? number(s.lastRttSeconds) : "null";
            out += ",\"last_seen\":" + timestamp(s.lastSeenUnix);
            out += ",\"state_changes\":" + std::to_string(s.stateChanges);
            out += '}';
        }
        out += "]}";
        i = end;
    }
    out += ']';
}

std::string scriptHash()
{
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(pageScript, std::char_traits<char>::length(pageScript));
    const Poco::DigestEngine::Digest& digest = sha.digest();
    std::ostringstream base64;
    Poco::Base64Encoder encoder(base64);
    encoder.rdbuf()->setLineLength(0);
    encoder.write(reinterpret_cast<const char*>(digest.data()), static_cast<std::streamsize>(digest.size()));
    encoder.close();
    return "sha256-" + base64.str();
}

} // namespace

const std::string& StatusPage::html()
{
    static const std::string page =
        std::string(pageHead) + "<script>" + pageScript + "</script>\n" + pageTail;
    return page;
}

const std::string& StatusPage::contentSecurityPolicy()
{
    static const std::string policy =
        "default-src 'none'; script-src '" + scriptHash() +
        "'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    return policy;
}

std::string StatusPage::jsonString(const std::string& text)
{
    std::string out;
    out.reserve(text.size() + 2);
    appendString(out, text);
    return out;
}

std::string StatusPage::json(const std::vector<RunningConfigs::Entry>& configs, double nowUnix)
{
    std::vector<const RunningConfigs::Entry*> sorted;
    sorted.reserve(configs.size());
    for (const auto& c : configs)
        sorted.push_back(&c);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto* a, const auto* b) { return a->promId < b->promId; });

    std::string out = "{\"version\":";
    appendString(out, FLEETPROBE_VERSION);
    out += ",\"now\":" + number(nowUnix) + ",\"configs\":[";
    bool first = true;
    for (const RunningConfigs::Entry* c : sorted)
    {
        if (!first)
            out += ',';
        first = false;
        const auto& snap = c->snapshot;
        const bool cycled = snap.lastCycleEndUnix > 0;
        out += "{\"prom_id\":";
        appendString(out, c->promId);
        out += ",\"jobs\":" + std::to_string(c->jobs);
        out += ",\"cycles\":" + std::to_string(snap.self.cycles);
        out += ",\"last_cycle_end\":" + timestamp(snap.lastCycleEndUnix);
        out +=
            ",\"last_cycle_seconds\":" + (cycled ? number(snap.lastCycle.probeSeconds) : std::string("null"));
        out += ",\"last_push_ok\":";
        out += cycled ? (snap.lastCycle.pushed ? "true" : "false") : "null";
        std::size_t counts[3] = {0, 0, 0};
        std::string devices = "null";
        if (snap.devices)
        {
            devices.clear();
            appendDevices(devices, *snap.devices, counts);
        }
        out += ",\"counts\":";
        if (snap.devices)
            out += "{\"up\":" + std::to_string(counts[0]) + ",\"partial\":" + std::to_string(counts[1]) +
                   ",\"down\":" + std::to_string(counts[2]) + "}";
        else
            out += "null";
        out += ",\"devices\":" + devices + "}";
    }
    out += "]}\n";
    return out;
}

} // namespace fleetprobe
