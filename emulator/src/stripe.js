/* A stand-in for Stripe.js, served by the Stripe emulator at GET /_emulator/stripe.js for tests
 * that route https://js.stripe.com/** to it (tests/browser/e2e.mjs): the subset a storefront
 * uses for embedded Checkout, so the page runs under its real CSP with no internet.
 *
 *   var stripe = Stripe('pk_test_...');
 *   stripe.initEmbeddedCheckout({ fetchClientSecret: () => Promise<client_secret> })
 *     // (also createEmbeddedCheckoutPage) resolves to { mount(selector | element), unmount(), destroy() }
 *
 * mount() puts an <iframe> from https://checkout.stripe.com (the origin Stripe documents for
 * Checkout's frames; the test routes it to the emulator) showing the emulator's payment page
 * for the session (/c/pay/{id}). When the shopper pays there, the page posts
 * {type: "stripe-emulator:checkout-complete", return_url} to this window, and this script sends
 * the shopper to the session's return_url, as Stripe.js does when embedded Checkout completes.
 * Nothing here is Stripe's code. */
(function () {
  'use strict';

  var FRAME_ORIGIN = 'https://checkout.stripe.com';
  var COMPLETE = 'stripe-emulator:checkout-complete';

  /** cs_test_..._secret_... => cs_test_... (the session a client secret belongs to). */
  function sessionOf(clientSecret) {
    var m = /^(cs_(?:test|live)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(String(clientSecret || ''));
    if (!m) throw new Error('Invalid client secret for embedded Checkout');
    return m[1];
  }

  function EmbeddedCheckout(sessionId) {
    this.sessionId = sessionId;
    this.frame = null;
    this.listener = null;
    this.destroyed = false;
  }

  EmbeddedCheckout.prototype.mount = function (target) {
    if (this.destroyed) throw new Error('This embedded Checkout was destroyed');
    if (this.frame) throw new Error('This embedded Checkout is already mounted');
    var host = typeof target === 'string' ? document.querySelector(target) : target;
    if (!host || typeof host.appendChild !== 'function') throw new Error('mount(): no element ' + target);
    var frame = document.createElement('iframe');
    frame.src = FRAME_ORIGIN + '/c/pay/' + encodeURIComponent(this.sessionId);
    frame.name = 'embedded-checkout';
    frame.title = 'Secure checkout';
    // Properties, not a style attribute: the page's style-src allows no inline styles.
    frame.style.width = '100%';
    frame.style.minHeight = '720px';
    frame.style.border = '0';
    this.listener = function (event) {
      if (event.origin !== FRAME_ORIGIN || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (data && data.type === COMPLETE && typeof data.return_url === 'string') {
        window.location.assign(data.return_url);
      }
    };
    window.addEventListener('message', this.listener);
    host.appendChild(frame);
    this.frame = frame;
  };

  EmbeddedCheckout.prototype.unmount = function () {
    if (this.listener) window.removeEventListener('message', this.listener);
    if (this.frame && this.frame.parentNode) this.frame.parentNode.removeChild(this.frame);
    this.frame = null;
    this.listener = null;
  };

  EmbeddedCheckout.prototype.destroy = function () {
    this.unmount();
    this.destroyed = true;
  };

  function Stripe(publishableKey) {
    if (!(this instanceof Stripe)) return new Stripe(publishableKey);
    if (typeof publishableKey !== 'string' || !/^pk_(test|live)_[A-Za-z0-9_]+$/.test(publishableKey)) {
      throw new Error('Invalid publishable key');
    }
    this.publishableKey = publishableKey;
  }

  Stripe.prototype.initEmbeddedCheckout = function (options) {
    if (!options || typeof options.fetchClientSecret !== 'function') {
      return Promise.reject(new Error('initEmbeddedCheckout: fetchClientSecret is required'));
    }
    return Promise.resolve()
      .then(function () { return options.fetchClientSecret(); })
      .then(function (secret) { return new EmbeddedCheckout(sessionOf(secret)); });
  };
  Stripe.prototype.createEmbeddedCheckoutPage = Stripe.prototype.initEmbeddedCheckout;

  window.Stripe = Stripe;
})();
