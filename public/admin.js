/* The owner's order list: asks for ADMIN_TOKEN, keeps it only in this tab's sessionStorage,
 * reads GET /api/orders a page at a time and offers the rows loaded as CSV. Everything the
 * server sends is rendered with textContent. */
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
      first.appendChild(num);
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

  function load(more) {
    var t = token();
    if (!t) return;
    var state = el.filter ? el.filter.value : 'paid';
    var path = '/api/orders?limit=' + PAGE + '&state=' + encodeURIComponent(state) +
      (more && next ? '&starting_after=' + encodeURIComponent(next) : '');
    Shop.setMessage(el.message, 'Loading orders\u2026', 'info');
    fetch(path, {
      headers: { 'Accept': 'application/json', 'Authorization': 'Bearer ' + t },
      credentials: 'same-origin',
      cache: 'no-store'
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) { return { res: res, data: data }; });
    }).then(function (r) {
      if (r.res.ok && r.data && Array.isArray(r.data.data)) {
        rows = more ? rows.concat(r.data.data) : r.data.data;
        next = r.data.has_more ? r.data.next_starting_after : null;
        Shop.setMessage(el.message, '');
        render();
        return;
      }
      if (r.res.status === 401) {
        setToken('');
        el.orders.hidden = true;
        el.login.hidden = false;
        Shop.setMessage(el.message, 'That token was not accepted. Paste the ADMIN_TOKEN set for this deployment.', 'error');
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

  function init() {
    el.login = $('login');
    el.token = $('token');
    el.message = $('message');
    el.orders = $('orders');
    el.body = $('orders-body');
    el.empty = $('orders-empty');
    el.more = $('more');
    el.filter = $('state-filter');

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
      el.login.hidden = false;
      Shop.setMessage(el.message, 'The token is forgotten in this tab.', 'info');
    });
    if (token()) load(false);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
