/* Shared helpers for the storefront and the confirmation page.
 * No framework, no external resources; everything server-provided is
 * rendered with textContent / createElement only. */
(function () {
  'use strict';

  var CART_KEY = 'rr-shop.cart.v1';

  // ---------------------------------------------------------------- money

  var digitsCache = Object.create(null);
  var formatCache = Object.create(null);

  function isCurrencyCode(c) {
    return typeof c === 'string' && /^[A-Za-z]{3}$/.test(c);
  }

  /** Number of minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, ...). */
  function currencyDigits(currency) {
    var c = String(currency).toUpperCase();
    if (!(c in digitsCache)) {
      var d = 2;
      try {
        d = new Intl.NumberFormat('en', { style: 'currency', currency: c })
          .resolvedOptions().maximumFractionDigits;
      } catch (e) { d = 2; }
      digitsCache[c] = d;
    }
    return digitsCache[c];
  }

  /** Format an integer amount in minor units, e.g. (2500, "usd") -> "$25.00". */
  function formatMoney(amount, currency) {
    if (typeof amount !== 'number' || !isFinite(amount) || !isCurrencyCode(currency)) {
      return '—';
    }
    var c = currency.toUpperCase();
    var value = amount / Math.pow(10, currencyDigits(c));
    try {
      if (!formatCache[c]) {
        formatCache[c] = new Intl.NumberFormat(undefined, { style: 'currency', currency: c });
      }
      return formatCache[c].format(value);
    } catch (e) {
      return value.toFixed(currencyDigits(c)) + ' ' + c;
    }
  }

  // ---------------------------------------------------------------- fetch

  /**
   * fetch() wrapper for the same-origin JSON API. Never throws.
   * Resolves to {ok, status, data, retryAfter, networkError}.
   */
  function api(path, options) {
    options = options || {};
    var init = {
      method: options.method || 'GET',
      headers: { 'Accept': 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store'
    };
    if (options.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    if (options.signal) init.signal = options.signal;

    return fetch(path, init).then(function (res) {
      var retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
      return res.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        return { ok: res.ok, status: res.status, data: data, retryAfter: retryAfter, networkError: false };
      }, function () {
        return { ok: false, status: res.status, data: null, retryAfter: retryAfter, networkError: false };
      });
    }, function (err) {
      var aborted = !!(err && err.name === 'AbortError');
      return { ok: false, status: 0, data: null, retryAfter: null, networkError: !aborted, aborted: aborted };
    });
  }

  function parseRetryAfter(value) {
    if (!value) return null;
    var v = String(value).trim();
    if (/^\d+$/.test(v)) {
      var n = parseInt(v, 10);
      return n > 0 && n < 86400 ? n : null;
    }
    var when = Date.parse(v);
    if (!isNaN(when)) {
      var secs = Math.ceil((when - Date.now()) / 1000);
      return secs > 0 && secs < 86400 ? secs : null;
    }
    return null;
  }

  function waitMessage(retryAfter) {
    var msg = 'Too many attempts, please wait a moment';
    if (retryAfter) {
      msg += ' (try again in ' + retryAfter + (retryAfter === 1 ? ' second' : ' seconds') + ')';
    }
    return msg + '.';
  }

  var NETWORK_MESSAGE = 'Could not reach the shop, check your connection.';

  /**
   * Turn a failed api() result into {text, reference} for display: a sentence written for
   * shoppers from the status, never the server's own message (which is for developers); the
   * server's reference, when there is one, so support can find the log line.
   */
  function describeError(res, fallback) {
    if (res.networkError) return { text: NETWORK_MESSAGE, reference: null };
    if (res.status === 429) return { text: waitMessage(res.retryAfter), reference: null };
    var err = res.data && typeof res.data === 'object' ? res.data.error : null;
    var reference = err && typeof err.reference === 'string' && /^[\w.:-]{1,100}$/.test(err.reference)
      ? err.reference
      : null;
    var text;
    if (res.status === 400 || res.status === 413 || res.status === 415) {
      text = 'Something in your cart is no longer available as it was. Please review your cart and try again.';
    } else if (res.status === 409 && err && typeof err.message === 'string' && err.message.length <= 300) {
      // The shop's own words about the cart (e.g. "Mug is no longer available"), shown as text.
      text = err.message;
    } else if (res.status === 403) {
      text = 'This page was opened from another address. Please open the shop again and retry.';
    } else if (res.status === 502 || res.status === 503 || res.status === 504) {
      text = 'Our payment provider is not responding. You have not been charged; please try again in a moment.';
    } else if (res.status >= 500) {
      text = 'Something went wrong on our side. You have not been charged; please try again in a moment.';
    } else {
      text = fallback || 'Something went wrong. Please try again.';
    }
    return { text: text, reference: reference };
  }

  // ---------------------------------------------------------------- status region

  /**
   * Show a message in an aria-live region (kept rendered at all times so
   * screen readers announce changes; CSS collapses it while empty). kind: "info" | "error" | "success".
   * reference (optional) is appended as its own line.
   */
  function setMessage(el, text, kind, reference) {
    if (!el) return;
    while (el.firstChild) el.removeChild(el.firstChild);
    el.classList.remove('is-error', 'is-info', 'is-success');
    if (!text) return;
    el.classList.add('is-' + (kind || 'info'));
    var p = document.createElement('p');
    p.textContent = text;
    el.appendChild(p);
    if (reference) {
      var r = document.createElement('p');
      r.className = 'reference';
      r.appendChild(document.createTextNode('Quote this reference if you contact us: '));
      var code = document.createElement('code');
      code.textContent = reference;
      r.appendChild(code);
      el.appendChild(r);
    }
  }

  // ---------------------------------------------------------------- cart storage

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  /** Returns {items: {id: qty}, code: string}. */
  function loadCart() {
    var empty = { items: {}, code: '' };
    var s = storage();
    if (!s) return empty;
    try {
      var raw = s.getItem(CART_KEY);
      if (!raw) return empty;
      var parsed = JSON.parse(raw);
      var items = {};
      if (parsed && parsed.items && typeof parsed.items === 'object') {
        Object.keys(parsed.items).forEach(function (id) {
          var q = parsed.items[id];
          if (typeof q === 'number' && q > 0 && Math.floor(q) === q) items[id] = q;
        });
      }
      var code = parsed && typeof parsed.code === 'string' ? parsed.code.slice(0, 64) : '';
      return { items: items, code: code };
    } catch (e) {
      return empty;
    }
  }

  function saveCart(cart) {
    var s = storage();
    if (!s) return;
    try { s.setItem(CART_KEY, JSON.stringify(cart)); } catch (e) { /* quota / private mode */ }
  }

  function clearCart() {
    var s = storage();
    if (!s) return;
    try { s.removeItem(CART_KEY); } catch (e) { /* ignore */ }
  }

  window.Shop = Object.freeze({
    formatMoney: formatMoney,
    currencyDigits: currencyDigits,
    isCurrencyCode: isCurrencyCode,
    api: api,
    describeError: describeError,
    waitMessage: waitMessage,
    NETWORK_MESSAGE: NETWORK_MESSAGE,
    setMessage: setMessage,
    loadCart: loadCart,
    saveCart: saveCart,
    clearCart: clearCart
  });
})();
