/* The owner's order list: asks for ADMIN_TOKEN, keeps it only in this tab's sessionStorage,
 * reads GET /api/orders a page at a time and offers the rows loaded as CSV. An order number
 * opens the order view (GET /api/orders?order=NUMBER: lines, totals, money and delivery, the
 * shopper's email and address, the note) with the owner's actions (POST /api/order-action:
 * refund, ship, deliver, cancel, note), each sent under one Idempotency-Key per intent, reused
 * on a retry. Above the orders, a health line from GET /api/health: green when every check
 * passes, otherwise each warning or failure with its fix. Everything the server sends is
 * rendered with textContent. */
(function () {
  'use strict';

  var Shop = window.Shop;
  var TOKEN_KEY = 'rr-shop.admin-token';
  var PAGE = 50;
  // Amounts in the CSV are in the currency's major unit (12.50, not 1250), beside `currency`.
  var COLUMNS = ['order_number', 'created_at', 'fulfillment', 'money_state', 'dispute_status', 'refunded', 'items',
    'subtotal', 'discount', 'shipping', 'tax', 'total', 'currency', 'shipping_rate', 'shipping_country', 'session_id'];
  // What the owner reads for each state the server names.
  var STATE_WORDS = {
    paid: 'Paid', partially_refunded: 'Partly refunded', refunded: 'Refunded', disputed: 'Disputed',
    dispute_won: 'Dispute won', dispute_lost: 'Dispute lost', fulfilled: 'Fulfilled',
    awaiting_payment: 'Awaiting payment', payment_failed: 'Payment failed', expired: 'Expired'
  };

  var el = {};
  var rows = [];
  var next = null;

  function $(id) { return document.getElementById(id); }

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function token() {
    var s = storage();
    try { return s ? s.getItem(TOKEN_KEY) || '' : ''; } catch (e) { return ''; }
  }

  function setToken(value) {
    var s = storage();
    if (!s) return;
    try {
      if (value) s.setItem(TOKEN_KEY, value);
      else s.removeItem(TOKEN_KEY);
    } catch (e) { /* private mode: the token lives only in the field */ }
  }

  function money(n, currency) {
    return typeof n === 'number' ? Shop.formatMoney(n, currency) : '';
  }

  /** An amount in the currency's major unit, for the CSV: `12.50` (no symbol, a dot). */
  function major(n, currency) {
    if (typeof n !== 'number' || !Shop.isCurrencyCode(currency)) return '';
    var digits = Shop.currencyDigits(currency.toUpperCase());
    return (n / Math.pow(10, digits)).toFixed(digits);
  }

  function words(state) {
    return STATE_WORDS[state] || String(state || '').replace(/_/g, ' ');
  }

  function when(secs) {
    if (typeof secs !== 'number' || secs <= 0) return '';
    var d = new Date(secs * 1000);
    return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  }

  function itemsText(o) {
    return (Array.isArray(o.items) ? o.items : []).map(function (it) {
      return String(it.name) + ' \u00d7 ' + it.quantity;
    }).join(', ');
  }

  function historyLines(o) {
    return (Array.isArray(o.history) ? o.history : []).map(function (h) {
      var what = h.from === h.to ? words(h.to) : words(h.from) + ' \u2192 ' + words(h.to);
      if (h.dispute_status) what += ' (dispute ' + String(h.dispute_status).replace(/_/g, ' ') + ')';
      if (h.amount) what += ', ' + (h.amount < 0 ? 'back to you ' + money(-h.amount, o.currency) : money(h.amount, o.currency));
      return { at: when(h.at), what: what };
    });
  }

  function cell(tr, text, className) {
    var td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function render() {
    while (el.body.firstChild) el.body.removeChild(el.body.firstChild);
    rows.forEach(function (o) {
      var t = o.totals || {};
      var tr = document.createElement('tr');
      var num = document.createElement('code');
      num.textContent = o.order_number || '\u2014';
      var first = cell(tr, '');
      if (o.order_number) {
        var open = document.createElement('button');
        open.type = 'button';
        open.className = 'order-open';
        open.setAttribute('data-order', o.order_number);
        open.setAttribute('aria-label', 'Open order ' + o.order_number);
        open.appendChild(num);
        first.appendChild(open);
      } else {
        first.appendChild(num);
      }
      cell(tr, when(o.created_at), 'date');
      cell(tr, words(o.fulfillment));
      cell(tr, (o.money_state ? words(o.money_state) : '\u2014') +
        (o.amount_refunded ? ' (' + money(o.amount_refunded, o.currency) + ' back)' : '') +
        (o.dispute_status && String(o.money_state || '').indexOf('dispute') !== 0
          ? ' \u00b7 dispute ' + o.dispute_status.replace(/_/g, ' ') : ''));
      cell(tr, itemsText(o));
      cell(tr, t.shipping_rate ? t.shipping_rate + ' ' + money(t.amount_shipping, o.currency) : '', 'num');
      cell(tr, t.amount_discount ? '\u2212' + money(t.amount_discount, o.currency) : '', 'num');
      cell(tr, typeof t.amount_tax === 'number'
        ? money(t.amount_tax, o.currency) + (t.tax_included && t.amount_tax ? ' incl.' : '') : '\u2014', 'num');
      cell(tr, money(t.amount_total, o.currency), 'num');
      cell(tr, o.shipping_country || '');
      var hist = cell(tr, '', 'history');
      historyLines(o).forEach(function (h) {
        var line = document.createElement('div');
        var at = document.createElement('span');
        at.className = 'date';
        at.textContent = h.at;
        line.appendChild(at);
        line.appendChild(document.createTextNode(' ' + h.what));
        hist.appendChild(line);
      });
      el.body.appendChild(tr);
    });
    el.empty.hidden = rows.length > 0;
    el.more.hidden = !next;
    el.orders.hidden = false;
    el.login.hidden = true;
  }

  /** One request to the owner's API with the token (and any extra headers, a body): resolves to
   *  {res, data}, `data` the parsed JSON or null. */
  function ownerFetch(path, t, method, headers, body) {
    var h = { 'Accept': 'application/json', 'Authorization': 'Bearer ' + t };
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    var init = { method: method || 'GET', headers: h, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) init.body = body;
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) { return { res: res, data: data }; });
    });
  }

  function load(more) {
    var t = token();
    if (!t) return;
    var state = el.filter ? el.filter.value : 'paid';
    var path = '/api/orders?limit=' + PAGE + '&state=' + encodeURIComponent(state) +
      (more && next ? '&starting_after=' + encodeURIComponent(next) : '');
    Shop.setMessage(el.message, 'Loading orders\u2026', 'info');
    ownerFetch(path, t).then(function (r) {
      if (r.res.ok && r.data && Array.isArray(r.data.data)) {
        rows = more ? rows.concat(r.data.data) : r.data.data;
        next = r.data.has_more ? r.data.next_starting_after : null;
        Shop.setMessage(el.message, '');
        render();
        if (!more) loadHealth(t);
        return;
      }
      if (r.res.status === 401) {
        tokenRefused();
      } else if (r.res.status === 404) {
        Shop.setMessage(el.message, location.hostname === 'localhost' || location.hostname === '127.0.0.1'
          ? 'The order list is off: put ADMIN_TOKEN=<32 or more characters> in .env (e.g. from `openssl rand -hex 32`) and restart `cargo run -p dev`.'
          : 'The order list is off: set ADMIN_TOKEN (32 characters or more) in the project\u2019s environment variables and redeploy.', 'error');
      } else if (r.res.status === 429) {
        Shop.setMessage(el.message, Shop.waitMessage(parseInt(r.res.headers.get('Retry-After'), 10) || null), 'error');
      } else {
        Shop.setMessage(el.message, 'The order list could not be loaded. Check the function logs for the reference.', 'error',
          r.data && r.data.error && typeof r.data.error.reference === 'string' ? r.data.error.reference : null);
      }
    }, function () {
      Shop.setMessage(el.message, Shop.NETWORK_MESSAGE, 'error');
    });
  }

  /** The health line: "All checks pass" (green), or each check that warns or fails with its fix;
   *  below it, what the webhook saw. A health answer that cannot be read hides the line. */
  function loadHealth(t) {
    ownerFetch('/api/health', t).then(function (r) {
      var d = r.data;
      if (!r.res.ok || !d || !Array.isArray(d.checks)) {
        el.health.hidden = true;
        return;
      }
      var problems = d.checks.filter(function (c) { return c.status === 'warn' || c.status === 'fail'; });
      clear(el.healthProblems);
      el.health.className = 'health ' + (d.status === 'fail' ? 'is-fail' : problems.length ? 'is-warn' : 'is-ok');
      el.healthLine.textContent = problems.length
        ? problems.length + (problems.length === 1 ? ' check needs' : ' checks need') + ' attention (' +
          (d.status === 'fail' ? 'orders can be lost' : 'warnings') + ')'
        : 'All checks pass';
      problems.forEach(function (c) {
        var li = document.createElement('li');
        li.textContent = (c.status === 'fail' ? 'FAIL ' : 'WARN ') + c.check + ': ' + c.message;
        if (c.fix) {
          var fix = document.createElement('span');
          fix.className = 'fix';
          fix.textContent = 'Fix: ' + c.fix;
          li.appendChild(fix);
        }
        el.healthProblems.appendChild(li);
      });
      var rec = d.record || {};
      var parts = [];
      parts.push(rec.last_event ? 'Last verified event: ' + rec.last_event.type + ', ' + when(rec.last_event.at)
        : 'No verified event yet');
      var refused = Object.keys(rec.refusals_24h || {}).map(function (k) { return k + ' ' + rec.refusals_24h[k]; });
      if (refused.length) parts.push('refused in 24 h: ' + refused.join(', '));
      if (rec.last_reconcile_run) parts.push('last reconciliation run: ' + when(rec.last_reconcile_run.at));
      el.healthRecord.textContent = parts.join(' \u00b7 ');
      el.health.hidden = false;
    }, function () {
      el.health.hidden = true;
    });
  }

  /** One CSV field: quoted, and a leading = + - @ neutralised so a spreadsheet never runs it. */
  function csvField(v) {
    var s = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = '\'' + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }

  function downloadCsv() {
    var lines = [COLUMNS.join(',')];
    rows.forEach(function (o) {
      var t = o.totals || {};
      var values = {
        order_number: o.order_number, created_at: when(o.created_at), fulfillment: o.fulfillment,
        money_state: o.money_state, dispute_status: o.dispute_status, refunded: major(o.amount_refunded, o.currency),
        items: itemsText(o), subtotal: major(t.amount_subtotal, o.currency), discount: major(t.amount_discount, o.currency),
        shipping: major(t.amount_shipping, o.currency), tax: major(t.amount_tax, o.currency),
        total: major(t.amount_total, o.currency), currency: (o.currency || '').toUpperCase(),
        shipping_rate: t.shipping_rate, shipping_country: o.shipping_country, session_id: o.session_id
      };
      lines.push(COLUMNS.map(function (c) { return csvField(values[c]); }).join(','));
    });
    var blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'orders.csv';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  // ---------------------------------------------------------------- the order view

  var REASON_WORDS = { requested_by_customer: 'requested by the shopper', duplicate: 'duplicate payment', fraudulent: 'fraudulent' };
  var SHIPPING_WORDS = { unshipped: 'Not shipped yet', shipped: 'Shipped', delivered: 'Delivered', cancelled: 'Cancelled' };

  var view = { order: null, customer: null, number: null, loading: 0 };
  // The intent being carried out per action: its request body and its Idempotency-Key. A retry
  // of the same request (a double click, a network error, a 5xx, a 429) reuses the key, so the
  // server acts once; a definitive answer (2xx, 4xx) ends the intent.
  var intents = {};
  var busy = false;

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function intentFor(action, body) {
    var text = JSON.stringify(body);
    var cur = intents[action];
    if (!cur || cur.body !== text) intents[action] = cur = { body: text, key: uuid() };
    return cur;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function dlRow(dl, term, value, className) {
    var dt = document.createElement('dt');
    dt.textContent = term;
    var dd = document.createElement('dd');
    if (className) dd.className = className;
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value;
    dl.appendChild(dt);
    dl.appendChild(dd);
    return dd;
  }

  function logLine(list, at, what) {
    var li = document.createElement('li');
    var date = document.createElement('span');
    date.className = 'date';
    date.textContent = when(at);
    li.appendChild(date);
    li.appendChild(document.createTextNode(' ' + what));
    list.appendChild(li);
  }

  /** An owner's action in words. */
  function actionWords(a, currency) {
    var d = a.details && typeof a.details === 'object' ? a.details : {};
    switch (a.action) {
      case 'refund':
        return 'You refunded ' + (typeof d.amount === 'number' ? money(d.amount, currency) : 'what was left') +
          (d.reason ? ' (' + (REASON_WORDS[d.reason] || String(d.reason).replace(/_/g, ' ')) + ')' : '') +
          (d.status && d.status !== 'succeeded' ? ', ' + String(d.status).replace(/_/g, ' ') : '');
      case 'ship':
        return 'You marked it shipped' + (d.carrier ? ' with ' + d.carrier : '') +
          (d.tracking_number ? ', tracking ' + d.tracking_number : '');
      case 'deliver':
        return 'You marked it delivered';
      case 'cancel':
        return 'You cancelled it' + (d.refunded ? ' and refunded ' + money(d.refunded, currency) : '');
      case 'note':
        return d.text ? 'You set the note' : 'You cleared the note';
      default:
        return String(a.action || '').replace(/_/g, ' ');
    }
  }

  /** What is still refundable, in minor units. */
  function refundable(o) {
    var total = o.totals && typeof o.totals.amount_total === 'number' ? o.totals.amount_total : 0;
    return Math.max(0, total - (o.amount_refunded || 0));
  }

  function digitsOf(currency) {
    return Shop.isCurrencyCode(currency) ? Shop.currencyDigits(currency.toUpperCase()) : 2;
  }

  /** "12.50" (the currency's major unit) in minor units; null when it is not an amount. */
  function parseAmount(text, currency) {
    var digits = digitsOf(currency);
    var t = String(text || '').trim().replace(/[\s\u00a0]/g, '').replace(',', '.');
    var m = /^(\d{1,9})(?:\.(\d*))?$/.exec(t);
    if (!m || (m[2] && m[2].length > digits)) return null;
    var frac = (m[2] || '');
    while (frac.length < digits) frac += '0';
    return parseInt(m[1] + frac, 10);
  }

  function isHttps(u) {
    try { return new URL(u).protocol === 'https:'; } catch (e) { return false; }
  }

  function renderView() {
    var o = view.order;
    var c = view.customer || {};
    var t = o.totals || {};
    var cur = o.currency;
    el.ovNumber.textContent = o.order_number || '';

    clear(el.ovItems);
    (Array.isArray(o.items) ? o.items : []).forEach(function (it) {
      var li = document.createElement('li');
      var name = document.createElement('span');
      name.textContent = it.quantity + ' \u00d7 ' + it.name;
      var amount = document.createElement('span');
      amount.className = 'num';
      amount.textContent = money(it.amount_subtotal, cur);
      li.appendChild(name);
      li.appendChild(amount);
      el.ovItems.appendChild(li);
    });
    clear(el.ovTotals);
    dlRow(el.ovTotals, 'Subtotal', money(t.amount_subtotal, cur), 'num');
    if (t.amount_discount) dlRow(el.ovTotals, 'Discount', '\u2212' + money(t.amount_discount, cur), 'num');
    if (t.shipping_rate || t.amount_shipping) {
      dlRow(el.ovTotals, 'Shipping' + (t.shipping_rate ? ' (' + t.shipping_rate + ')' : ''), money(t.amount_shipping, cur), 'num');
    }
    if (typeof t.amount_tax === 'number' && t.amount_tax) {
      dlRow(el.ovTotals, t.tax_included ? 'Tax (included)' : 'Tax', money(t.amount_tax, cur), 'num');
    }
    dlRow(el.ovTotals, 'Total', money(t.amount_total, cur), 'num ov-total');

    clear(el.ovMoney);
    dlRow(el.ovMoney, 'State', o.money_state ? words(o.money_state) : words(o.fulfillment));
    dlRow(el.ovMoney, 'Refunded', money(o.amount_refunded || 0, cur), 'num');
    if (o.money_state) dlRow(el.ovMoney, 'Left to refund', money(refundable(o), cur), 'num');
    if (o.dispute_status) dlRow(el.ovMoney, 'Dispute', String(o.dispute_status).replace(/_/g, ' '));
    dlRow(el.ovMoney, 'Ordered', when(o.created_at), 'date');
    if (!o.livemode) dlRow(el.ovMoney, 'Mode', 'Test');

    clear(el.ovHistory);
    var entries = [];
    historyLines(o).forEach(function (h, i) { entries.push({ at: o.history[i].at, what: h.what }); });
    (Array.isArray(o.actions) ? o.actions : []).forEach(function (a) { entries.push({ at: a.at, what: actionWords(a, cur) }); });
    entries.sort(function (a, b) { return a.at - b.at; });
    entries.forEach(function (e) { logLine(el.ovHistory, e.at, e.what); });
    el.ovHistoryEmpty.hidden = entries.length > 0;

    clear(el.ovDelivery);
    dlRow(el.ovDelivery, 'Fulfilment', words(o.fulfillment));
    dlRow(el.ovDelivery, 'Shipping', o.shipping_state ? (SHIPPING_WORDS[o.shipping_state] || words(o.shipping_state)) : '\u2014');
    if (o.carrier) dlRow(el.ovDelivery, 'Carrier', o.carrier);
    if (o.tracking_number) {
      var tn = document.createElement('code');
      tn.textContent = o.tracking_number;
      dlRow(el.ovDelivery, 'Tracking', tn);
    }
    if (o.tracking_url) {
      var link;
      if (isHttps(o.tracking_url)) {
        link = document.createElement('a');
        link.href = o.tracking_url;
        link.rel = 'noopener noreferrer';
        link.target = '_blank';
        link.id = 'ov-tracking-link';
        link.textContent = 'Track the parcel';
      } else {
        link = document.createTextNode(o.tracking_url);
      }
      dlRow(el.ovDelivery, 'Tracking page', link, 'ov-wrap');
    }

    el.ovEmail.textContent = c.email ? c.email : 'No email recorded.';
    clear(el.ovAddress);
    var ship = c.shipping;
    if (ship && ship.address) {
      var a = ship.address;
      var place = [a.city, a.state].filter(Boolean).join(', ');
      [ship.name, a.line1, a.line2, [place, a.postal_code].filter(Boolean).join(' '), a.country]
        .filter(function (x) { return x; })
        .forEach(function (line, i) {
          if (i) el.ovAddress.appendChild(document.createElement('br'));
          el.ovAddress.appendChild(document.createTextNode(String(line)));
        });
    } else {
      el.ovAddress.textContent = 'Nothing ships (no address).';
    }
    el.ovNote.textContent = o.note || 'No note.';

    // The actions: what cannot apply is disabled (the server refuses it anyway, with a reason).
    var paid = o.fulfillment === 'fulfilled';
    var left = refundable(o);
    var state = o.shipping_state;
    var disputed = o.money_state === 'disputed';
    el.ovActions.hidden = !paid;
    el.ovRefundCurrency.textContent = (cur || '').toUpperCase();
    el.ovRefundAmount.value = left > 0 ? major(left, cur) : '';
    el.ovRefund.disabled = !paid || left <= 0 || disputed;
    el.ovRefundAmount.disabled = el.ovRefund.disabled;
    el.ovShip.disabled = !paid || state !== 'unshipped';
    [el.ovCarrier, el.ovTrackingNumber, el.ovTrackingUrl].forEach(function (f) { f.disabled = el.ovShip.disabled; });
    el.ovDeliver.disabled = !paid || state !== 'shipped';
    el.ovCancel.disabled = !paid || state !== 'unshipped' || disputed;
    el.ovNoteText.value = o.note || '';
    el.ovNoteCount.textContent = String(el.ovNoteText.value.length);
    el.ovRefundConfirm.hidden = true;
    el.ovCancelConfirm.hidden = true;
    el.ovBody.hidden = false;
  }

  function openOrder(number) {
    var t = token();
    if (!t || !number) return;
    var loading = ++view.loading;
    view.number = number;
    intents = {};
    el.ovBody.hidden = true;
    el.ovActions.hidden = true;
    el.ovNumber.textContent = number;
    el.view.hidden = false;
    Shop.setMessage(el.ovMessage, 'Loading the order\u2026', 'info');
    el.view.scrollIntoView({ block: 'start' });
    el.ovTitle.focus({ preventScroll: true });
    ownerFetch('/api/orders?order=' + encodeURIComponent(number), t).then(function (r) {
      if (loading !== view.loading) return;
      if (r.res.ok && r.data && r.data.order) {
        view.order = r.data.order;
        view.customer = r.data.customer || {};
        Shop.setMessage(el.ovMessage, '');
        renderView();
        return;
      }
      if (r.res.status === 401) return tokenRefused();
      Shop.setMessage(el.ovMessage, failure(r.res, r.data, 'The order could not be loaded.'), 'error');
    }, function () {
      if (loading === view.loading) Shop.setMessage(el.ovMessage, Shop.NETWORK_MESSAGE, 'error');
    });
  }

  function closeView() {
    view.loading++;
    view.order = null;
    intents = {};
    el.view.hidden = true;
    var btn = view.number && el.body.querySelector('button.order-open[data-order="' + (window.CSS && CSS.escape ? CSS.escape(view.number) : view.number) + '"]');
    if (btn) btn.focus();
  }

  function tokenRefused() {
    setToken('');
    el.view.hidden = true;
    el.orders.hidden = true;
    el.login.hidden = false;
    Shop.setMessage(el.message, 'That token was not accepted. Paste the ADMIN_TOKEN set for this deployment.', 'error');
  }

  /** The sentence for a failed request: the server's own message on a 4xx. */
  function failure(res, data, fallback) {
    var msg = data && data.error && typeof data.error.message === 'string' ? data.error.message : '';
    if (res.status === 429) return Shop.waitMessage(parseInt(res.headers.get('Retry-After'), 10) || null);
    if (res.status >= 400 && res.status < 500 && msg) return fallback + ' ' + msg.charAt(0).toUpperCase() + msg.slice(1) + '.';
    return fallback + ' Try again; the same request is sent again safely.';
  }

  /** Sends one action for the open order; `button` is disabled while it is in flight. */
  function act(action, fields, button, done) {
    var t = token();
    var o = view.order;
    if (!t || !o || busy) return;
    var body = { order: o.order_number, action: action };
    Object.keys(fields || {}).forEach(function (k) { body[k] = fields[k]; });
    var intent = intentFor(action, body);
    busy = true;
    button.disabled = true;
    button.classList.add('is-busy');
    button.setAttribute('aria-busy', 'true');
    Shop.setMessage(el.ovMessage, 'Sending\u2026', 'info');
    var settle = function () {
      busy = false;
      button.classList.remove('is-busy');
      button.removeAttribute('aria-busy');
      button.disabled = false;
    };
    var headers = { 'Content-Type': 'application/json', 'Idempotency-Key': intent.key };
    ownerFetch('/api/order-action', t, 'POST', headers, intent.body).then(function (r) {
      settle();
      var st = r.res.status;
      if (r.res.ok && r.data && r.data.session_id) {
        delete intents[action];
        var row = r.data;
        delete row.refund;
        if (view.order && view.order.session_id === row.session_id) {
          view.order = row;
          renderView();
        }
        updateRow(row);
        Shop.setMessage(el.ovMessage, done(row), 'success');
        return;
      }
      if (st === 401) return tokenRefused();
      // A refusal is final for this request (the server keeps it with the key): the next try
      // is a new intent. A 429 or a failure keeps the key, so a retry cannot act twice.
      var msg = r.data && r.data.error && typeof r.data.error.message === 'string' ? r.data.error.message : '';
      if (st >= 400 && st < 500 && st !== 429 && st !== 408 && !/in progress/.test(msg)) delete intents[action];
      Shop.setMessage(el.ovMessage, failure(r.res, r.data, 'Not done.'), 'error');
    }, function () {
      settle();
      Shop.setMessage(el.ovMessage, 'Not sent: the shop could not be reached. Try again; the same request is sent again safely.', 'error');
    });
  }

  /** The list's row for this order, replaced by the row an action answered. */
  function updateRow(row) {
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].session_id === row.session_id) {
        rows[i] = row;
        render();
        return;
      }
    }
  }

  function refundAsked() {
    var o = view.order;
    if (!o) return null;
    var amount = parseAmount(el.ovRefundAmount.value, o.currency);
    var left = refundable(o);
    if (!amount || amount <= 0) {
      Shop.setMessage(el.ovMessage, 'Enter the amount to refund, e.g. ' + major(Math.min(left, 1000) || 1000, o.currency) + '.', 'error');
      return null;
    }
    if (amount > left) {
      Shop.setMessage(el.ovMessage, 'At most ' + money(left, o.currency) + ' is left to refund.', 'error');
      return null;
    }
    return { amount: amount, reason: el.ovRefundReason.value };
  }

  function initView() {
    el.view = $('order-view');
    el.ovTitle = $('ov-title');
    el.ovNumber = $('ov-number');
    el.ovMessage = $('ov-message');
    el.ovBody = $('ov-body');
    el.ovItems = $('ov-items');
    el.ovTotals = $('ov-totals');
    el.ovMoney = $('ov-money');
    el.ovHistory = $('ov-history');
    el.ovHistoryEmpty = $('ov-history-empty');
    el.ovDelivery = $('ov-delivery');
    el.ovEmail = $('ov-email');
    el.ovAddress = $('ov-address');
    el.ovNote = $('ov-note');
    el.ovActions = $('ov-actions');
    el.ovRefundCurrency = $('ov-refund-currency');
    el.ovRefundAmount = $('ov-refund-amount');
    el.ovRefundReason = $('ov-refund-reason');
    el.ovRefund = $('ov-refund');
    el.ovRefundConfirm = $('ov-refund-confirm');
    el.ovRefundQuestion = $('ov-refund-question');
    el.ovRefundYes = $('ov-refund-yes');
    el.ovCarrier = $('ov-carrier');
    el.ovTrackingNumber = $('ov-tracking-number');
    el.ovTrackingUrl = $('ov-tracking-url');
    el.ovShip = $('ov-ship');
    el.ovDeliver = $('ov-deliver');
    el.ovCancel = $('ov-cancel');
    el.ovCancelConfirm = $('ov-cancel-confirm');
    el.ovCancelYes = $('ov-cancel-yes');
    el.ovNoteText = $('ov-note-text');
    el.ovNoteCount = $('ov-note-count');
    el.ovNoteSave = $('ov-note-save');

    el.body.addEventListener('click', function (e) {
      var btn = e.target.closest ? e.target.closest('button.order-open') : null;
      if (btn) openOrder(btn.getAttribute('data-order'));
    });
    $('ov-close').addEventListener('click', closeView);

    // Refund: the amount and reason, then a confirmation, then one request per intent.
    $('ov-refund-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var asked = refundAsked();
      if (!asked) return;
      el.ovRefundQuestion.textContent = 'Refund ' + money(asked.amount, view.order.currency) + ' to the shopper?';
      el.ovRefundConfirm.hidden = false;
      Shop.setMessage(el.ovMessage, '');
      el.ovRefundYes.focus();
    });
    el.ovRefundYes.addEventListener('click', function () {
      var asked = refundAsked();
      if (!asked) return;
      act('refund', asked, el.ovRefundYes, function (row) {
        return 'Refunded ' + money(asked.amount, row.currency) + '.';
      });
    });
    $('ov-refund-no').addEventListener('click', function () {
      delete intents.refund;
      el.ovRefundConfirm.hidden = true;
      el.ovRefund.focus();
    });
    // A changed amount or reason is another request: the question is asked again.
    [el.ovRefundAmount, el.ovRefundReason].forEach(function (f) {
      f.addEventListener('input', function () { if (!busy) el.ovRefundConfirm.hidden = true; });
    });

    $('ov-ship-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var carrier = el.ovCarrier.value.trim();
      var number = el.ovTrackingNumber.value.trim();
      var url = el.ovTrackingUrl.value.trim();
      if (!carrier || !number) {
        Shop.setMessage(el.ovMessage, 'Give the carrier and the tracking number.', 'error');
        return;
      }
      if (url && !isHttps(url)) {
        Shop.setMessage(el.ovMessage, 'The tracking URL must start with https://.', 'error');
        return;
      }
      var fields = { carrier: carrier, tracking_number: number };
      if (url) fields.tracking_url = url;
      act('ship', fields, el.ovShip, function () {
        el.ovCarrier.value = el.ovTrackingNumber.value = el.ovTrackingUrl.value = '';
        return 'Marked shipped; the shopper is told.';
      });
    });

    el.ovDeliver.addEventListener('click', function () {
      act('deliver', {}, el.ovDeliver, function () { return 'Marked delivered.'; });
    });

    el.ovCancel.addEventListener('click', function () {
      el.ovCancelConfirm.hidden = false;
      el.ovCancelYes.focus();
    });
    el.ovCancelYes.addEventListener('click', function () {
      act('cancel', {}, el.ovCancelYes, function (row) {
        return 'Cancelled' + (row.amount_refunded ? '; refunded so far: ' + money(row.amount_refunded, row.currency) : '') + '.';
      });
    });
    $('ov-cancel-no').addEventListener('click', function () {
      delete intents.cancel;
      el.ovCancelConfirm.hidden = true;
      el.ovCancel.focus();
    });

    el.ovNoteText.addEventListener('input', function () {
      el.ovNoteCount.textContent = String(el.ovNoteText.value.length);
    });
    $('ov-note-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var text = el.ovNoteText.value.trim();
      if (text.length > 500) {
        Shop.setMessage(el.ovMessage, 'A note has at most 500 characters.', 'error');
        return;
      }
      act('note', { text: text }, el.ovNoteSave, function () { return text ? 'Note saved.' : 'Note cleared.'; });
    });
  }

  function init() {
    el.login = $('login');
    el.token = $('token');
    el.message = $('message');
    el.orders = $('orders');
    el.body = $('orders-body');
    el.empty = $('orders-empty');
    el.more = $('more');
    el.health = $('health');
    el.healthLine = $('health-line');
    el.healthProblems = $('health-problems');
    el.healthRecord = $('health-record');
    el.filter = $('state-filter');
    initView();

    el.login.addEventListener('submit', function (e) {
      e.preventDefault();
      var value = el.token.value.trim();
      el.token.value = '';
      if (value.length < 32) {
        Shop.setMessage(el.message, 'An admin token has at least 32 characters.', 'error');
        return;
      }
      setToken(value);
      load(false);
    });
    el.more.addEventListener('click', function () { load(true); });
    el.filter.addEventListener('change', function () { next = null; load(false); });
    $('csv').addEventListener('click', downloadCsv);
    $('forget').addEventListener('click', function () {
      setToken('');
      rows = [];
      next = null;
      el.orders.hidden = true;
      el.health.hidden = true;
      el.view.hidden = true;
      view.order = null;
      el.login.hidden = false;
      Shop.setMessage(el.message, 'The token is forgotten in this tab.', 'info');
    });
    initStock();
    if (token()) load(false);
  }

  // ---------------------------------------------------------------- stock

  /** The stock form: POST /api/stock {"product", "stock"} under one Idempotency-Key per intent. */
  function initStock() {
    var form = $('stock-form');
    var product = $('stock-product');
    var units = $('stock-units');
    var message = $('stock-message');
    if (!form) return;
    fetch('/api/products', { headers: { 'Accept': 'application/json' } }).then(function (r) { return r.json(); }).then(function (data) {
      (data && Array.isArray(data.products) ? data.products : []).forEach(function (p) {
        if (!p || typeof p.id !== 'string' || typeof p.name !== 'string') return;
        var o = document.createElement('option');
        o.value = p.id;
        o.textContent = p.name;
        product.appendChild(o);
      });
    }, function () { Shop.setMessage(message, 'The products could not be loaded.', 'error'); });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var t = token();
      var raw = units.value.trim();
      var n = raw === '' ? null : Number(raw);
      if (!product.value || (n !== null && !(Number.isInteger(n) && n >= 0 && n <= 1000000))) {
        Shop.setMessage(message, 'Choose a product and a whole number of units (0 to 1000000), or leave it empty for unlimited.', 'error');
        return;
      }
      var intent = intentFor('stock', { product: product.value, stock: n });
      var headers = { 'Content-Type': 'application/json', 'Idempotency-Key': intent.key };
      $('stock-save').disabled = true;
      ownerFetch('/api/stock', t, 'POST', headers, intent.body).then(function (r) {
        $('stock-save').disabled = false;
        if (r.res.ok && r.data) {
          delete intents.stock;
          var d = r.data;
          Shop.setMessage(message, d.stock === null ? d.product + ': unlimited (' + d.sold + ' sold).'
            : d.product + ': ' + d.stock + ' on hand, ' + d.reserved + ' reserved, ' + d.available + ' available, ' +
              d.sold + ' sold, ' + d.oversold + ' oversold.', 'success');
          return;
        }
        if (r.res.status === 401) { tokenRefused(); return; }
        if (r.res.status < 500 && r.res.status !== 429) delete intents.stock;
        Shop.setMessage(message, failure(r.res, r.data, 'The stock could not be set.'), 'error');
      }, function () {
        $('stock-save').disabled = false;
        Shop.setMessage(message, Shop.NETWORK_MESSAGE, 'error');
      });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
