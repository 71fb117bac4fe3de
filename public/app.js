/* Storefront: catalog, cart, discount code and checkout.
 * Prices shown here are for display only; the browser only ever sends
 * product ids, quantities and the optional discount code. */
(function () {
  'use strict';

  var Shop = window.Shop;
  var STRIPE_JS_URL = 'https://js.stripe.com/clover/stripe.js';
  // One sentence for a code that does not lower the total, whatever the reason (unknown,
  // expired, not for this cart): the server's answer is the same for all of them.
  var NEUTRAL_CODE_MESSAGE = 'This code doesn\u2019t lower the total of this cart.';
  var CHECKOUT_LABEL = 'Checkout';
  var CHECKOUT_BUSY_LABEL = 'Redirecting to secure checkout…';
  var EMBEDDED_BUSY_LABEL = 'Loading secure checkout…';
  var REVALIDATE_DELAY_MS = 600;
  var CODE_LIMIT_MESSAGE = 'Too many different discount codes tried. Remove the code to continue without it';

  var $ = function (id) { return document.getElementById(id); };
  var el = {};

  var state = {
    products: [],          // validated catalog, server order
    byId: Object.create(null),
    publishableKey: null,
    shippingRates: [],     // [{name, amount, freeFrom}] from the catalog
    automaticTax: false,
    taxIncluded: false,
    uiMode: 'hosted_page',
    cart: { items: {}, code: '' },
    appliedCode: '',       // code the current server totals were computed with
    server: null,          // {key, code, currency, subtotal, discount, total}
    applySeq: 0,
    revalidateTimer: null,
    applyCooldownTimer: null,
    checkoutBusy: false,
    stripe: null,
    embedded: null,
    announceTimer: null,
    cards: Object.create(null)
  };

  // ------------------------------------------------------------ helpers

  function isNonNegInt(n) {
    return typeof n === 'number' && isFinite(n) && Math.floor(n) === n && n >= 0;
  }

  function clampQty(product, n) {
    if (!isFinite(n)) n = 0;
    n = Math.floor(n);
    if (n < 0) n = 0;
    if (n > product.max) n = product.max;
    return n;
  }

  function qtyOf(id) {
    return state.cart.items[id] || 0;
  }

  /** Cart as the API wants it: [{id, quantity}], in catalog order. */
  function cartItems() {
    var out = [];
    state.products.forEach(function (p) {
      var q = qtyOf(p.id);
      if (q > 0) out.push({ id: p.id, quantity: q });
    });
    return out;
  }

  function cartKey() {
    return JSON.stringify(cartItems());
  }

  function itemCount() {
    return cartItems().reduce(function (sum, it) { return sum + it.quantity; }, 0);
  }

  function currentCode() {
    return el.code.value.trim();
  }

  function serverTotalsValid() {
    var s = state.server;
    return !!(s && s.key === cartKey() && s.code === state.appliedCode && state.appliedCode !== '');
  }

  function validProduct(p) {
    return p && typeof p === 'object' &&
      typeof p.id === 'string' && p.id.length > 0 && p.id.length <= 100 &&
      typeof p.name === 'string' && p.name.trim().length > 0 &&
      isNonNegInt(p.unit_amount) &&
      Shop.isCurrencyCode(p.currency);
  }

  // ------------------------------------------------------------ catalog

  function loadProducts() {
    el.products.setAttribute('aria-busy', 'true');
    el.productsError.hidden = true;
    el.productsLoading.hidden = false;
    el.productsRetry.disabled = true;

    Shop.api('/api/products').then(function (res) {
      el.productsRetry.disabled = false;
      el.products.setAttribute('aria-busy', 'false');

      var data = res.data;
      if (!res.ok || !data || !Array.isArray(data.products)) {
        var err = Shop.describeError(res, 'We couldn\u2019t load the products right now.');
        showProductsError(err.text);
        return;
      }

      var seen = Object.create(null);
      state.products = [];
      data.products.forEach(function (p) {
        if (!validProduct(p) || seen[p.id]) return;
        seen[p.id] = true;
        var max = isNonNegInt(p.max_quantity) ? Math.min(p.max_quantity, 999) : 10;
        // Limited stock: the exact units left when few (0: sold out); "in_stock" or absent
        // says nothing. The list is cached, so checkout's answer stays the truth.
        var left = isNonNegInt(p.available) ? p.available : null;
        if (left !== null) max = Math.min(max, left);
        state.products.push({
          id: p.id,
          name: p.name.trim(),
          description: typeof p.description === 'string' ? p.description.trim() : '',
          unitAmount: p.unit_amount,
          currency: p.currency.toLowerCase(),
          max: max,
          left: left,
          shippable: p.shippable === true
        });
      });
      state.byId = Object.create(null);
      state.products.forEach(function (p) { state.byId[p.id] = p; });

      state.publishableKey = typeof data.publishable_key === 'string' && /^pk_[A-Za-z0-9_]+$/.test(data.publishable_key)
        ? data.publishable_key : null;
      state.uiMode = data.ui_mode === 'embedded_page' ? 'embedded_page' : 'hosted_page';
      if (data.test_mode === true) showTestModeRibbon();
      state.automaticTax = data.automatic_tax === true;
      state.taxIncluded = data.tax_behavior === 'inclusive';
      state.shippingRates = Array.isArray(data.shipping_rates) ? data.shipping_rates.filter(function (r) {
        return r && typeof r.display_name === 'string' && isNonNegInt(r.amount);
      }).map(function (r) {
        return { name: r.display_name, amount: r.amount, freeFrom: isNonNegInt(r.free_from_subtotal) ? r.free_from_subtotal : null };
      }) : [];

      if (state.products.length === 0) {
        showProductsError('No products are available right now. Please check back soon.');
        return;
      }

      sanitizeCart();
      renderProducts();
      el.code.value = state.cart.code;
      renderAll();

      // Returning with a previously entered code (e.g. from cancel.html):
      // ask the server for the totals once.
      if (state.cart.code.trim() && cartItems().length > 0) {
        applyCode({ auto: true });
      }
    });
  }

  function showProductsError(text) {
    el.productsLoading.hidden = true;
    el.productsErrorText.textContent = text;
    el.productsError.hidden = false;
    el.products.setAttribute('aria-busy', 'false');
  }

  /** Drop unknown ids and clamp stored quantities to the current catalog. */
  function sanitizeCart() {
    var items = {};
    Object.keys(state.cart.items).forEach(function (id) {
      var p = state.byId[id];
      if (!p) return;
      var q = clampQty(p, state.cart.items[id]);
      if (q > 0) items[id] = q;
    });
    state.cart.items = items;
    Shop.saveCart(state.cart);
  }

  var artVariants = 6;
  function artVariant(id) {
    var h = 0;
    for (var i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
    return h % artVariants;
  }

  /** A quantity stepper button (− or +) for the input `qtyId`. */
  function stepButton(className, ariaLabel, qtyId, text) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = className;
    b.setAttribute('aria-label', ariaLabel);
    b.setAttribute('aria-controls', qtyId);
    b.textContent = text;
    return b;
  }

  function renderProducts() {
    var frag = document.createDocumentFragment();
    state.cards = Object.create(null);

    state.products.forEach(function (p, index) {
      var nameId = 'product-' + index + '-name';
      var qtyId = 'product-' + index + '-qty';
      var descId = 'product-' + index + '-desc';

      var card = document.createElement('article');
      card.className = 'product-card';
      card.setAttribute('data-product-id', p.id);
      card.setAttribute('aria-labelledby', nameId);

      var art = document.createElement('div');
      art.className = 'product-art art-' + artVariant(p.id);
      art.setAttribute('aria-hidden', 'true');
      art.textContent = Array.from(p.name)[0].toUpperCase();
      card.appendChild(art);

      var body = document.createElement('div');
      body.className = 'product-body';

      var h = document.createElement('h3');
      h.className = 'product-name';
      h.id = nameId;
      h.textContent = p.name;
      body.appendChild(h);

      if (p.description) {
        var d = document.createElement('p');
        d.className = 'product-desc';
        d.id = descId;
        d.textContent = p.description;
        body.appendChild(d);
      }

      var price = document.createElement('p');
      price.className = 'product-price';
      price.textContent = Shop.formatMoney(p.unitAmount, p.currency);
      body.appendChild(price);

      card.appendChild(body);

      var foot = document.createElement('div');
      foot.className = 'product-foot';

      var stepper = document.createElement('div');
      stepper.className = 'stepper';
      stepper.setAttribute('role', 'group');
      stepper.setAttribute('aria-label', 'Quantity of ' + p.name);

      var dec = stepButton('dec', 'Remove one ' + p.name, qtyId, '\u2212');

      var label = document.createElement('label');
      label.className = 'visually-hidden';
      label.htmlFor = qtyId;
      label.textContent = 'Quantity of ' + p.name;

      var input = document.createElement('input');
      input.type = 'number';
      input.className = 'qty';
      input.id = qtyId;
      input.min = '0';
      input.max = String(p.max);
      input.step = '1';
      input.inputMode = 'numeric';
      input.autocomplete = 'off';
      input.value = String(qtyOf(p.id));

      var inc = stepButton('inc', 'Add one ' + p.name, qtyId, '+');

      stepper.appendChild(dec);
      stepper.appendChild(label);
      stepper.appendChild(input);
      stepper.appendChild(inc);
      foot.appendChild(stepper);

      var limit = document.createElement('p');
      limit.className = 'product-limit';
      if (p.left === 0) {
        limit.textContent = 'Sold out';
        limit.classList.add('is-stock');
      } else if (p.left !== null) {
        limit.textContent = 'Only ' + p.left + ' left';
        limit.classList.add('is-stock');
      } else {
        limit.textContent = p.max > 0 ? 'Max ' + p.max + ' per order' : 'Currently unavailable';
      }
      foot.appendChild(limit);

      card.appendChild(foot);

      if (p.max === 0) {
        input.disabled = true;
        inc.disabled = true;
        dec.disabled = true;
        card.classList.add('is-unavailable');
        if (p.left === 0) card.classList.add('is-sold-out');
      }

      dec.addEventListener('click', function () {
        setQty(p.id, qtyOf(p.id) - 1);
        keepFocus(dec, input);
      });
      inc.addEventListener('click', function () {
        setQty(p.id, qtyOf(p.id) + 1);
        keepFocus(inc, input);
      });
      input.addEventListener('input', function () {
        var raw = input.value.trim();
        if (raw === '') return; // let the user finish typing
        var n = Number(raw);
        if (!isFinite(n)) return;
        var q = clampQty(p, n);
        setQty(p.id, q);
        if (String(q) !== raw) input.value = String(q);
      });
      input.addEventListener('change', function () {
        var n = Number(input.value.trim());
        setQty(p.id, input.value.trim() === '' || !isFinite(n) ? 0 : clampQty(p, n));
        input.value = String(qtyOf(p.id));
      });
      input.addEventListener('blur', function () {
        if (input.value.trim() === '') input.value = String(qtyOf(p.id));
      });
      input.addEventListener('focus', function () {
        try { input.select(); } catch (e) { /* not supported for this input type */ }
      });

      state.cards[p.id] = { card: card, dec: dec, inc: inc, input: input };
      frag.appendChild(card);
    });

    el.productsLoading.hidden = true;
    // Replace everything but the (now hidden) loading indicator.
    Array.prototype.slice.call(el.products.children).forEach(function (c) {
      if (c !== el.productsLoading) el.products.removeChild(c);
    });
    el.products.appendChild(frag);
  }

  /** If a stepper button became disabled while focused, move focus to the input. */
  function keepFocus(button, input) {
    if (button.disabled && !input.disabled) input.focus();
  }

  // ------------------------------------------------------------ cart

  function setQty(id, n) {
    var p = state.byId[id];
    if (!p) return;
    var q = clampQty(p, n);
    if (q === qtyOf(id)) {
      renderCards();
      return;
    }
    if (q > 0) state.cart.items[id] = q;
    else delete state.cart.items[id];
    Shop.saveCart(state.cart);
    onCartChanged();
  }

  function onCartChanged() {
    Shop.setMessage(el.message, '');
    if (state.server && state.server.key !== cartKey()) state.server = null;

    clearTimeout(state.revalidateTimer);
    if (state.appliedCode) {
      if (cartItems().length > 0) {
        // Invalidate any in-flight answer and re-check the code shortly.
        state.applySeq++;
        setCodeStatus('Updating totals\u2026');
        state.revalidateTimer = setTimeout(function () {
          applyCode({ auto: true });
        }, REVALIDATE_DELAY_MS);
      } else {
        state.applySeq++;
        setApplyBusy(false);
        setCodeStatus('');
      }
    }
    renderAll();
    scheduleAnnounce();
  }

  function renderAll() {
    renderCards();
    renderCart();
  }

  function renderCards() {
    var locked = !!state.embedded;
    state.products.forEach(function (p) {
      var c = state.cards[p.id];
      if (!c) return;
      var q = qtyOf(p.id);
      var editing = document.activeElement === c.input && c.input.value.trim() === '';
      if (!editing && c.input.value !== String(q)) c.input.value = String(q);
      c.dec.disabled = locked || p.max === 0 || q <= 0;
      c.inc.disabled = locked || p.max === 0 || q >= p.max;
      c.input.disabled = locked || p.max === 0;
      c.card.classList.toggle('in-cart', q > 0);
    });
  }

  /** Sum of catalog prices per currency (display only). */
  function localSubtotals() {
    var sums = {};
    var order = [];
    cartItems().forEach(function (it) {
      var p = state.byId[it.id];
      if (!(p.currency in sums)) { sums[p.currency] = 0; order.push(p.currency); }
      sums[p.currency] += p.unitAmount * it.quantity;
    });
    return order.map(function (c) { return { currency: c, amount: sums[c] }; });
  }

  function formatSums(sums) {
    if (sums.length === 0) {
      var c = state.products.length ? state.products[0].currency : 'usd';
      return Shop.formatMoney(0, c);
    }
    return sums.map(function (s) { return Shop.formatMoney(s.amount, s.currency); }).join(' + ');
  }

  function renderCart() {
    var items = cartItems();

    // Lines
    while (el.cartLines.firstChild) el.cartLines.removeChild(el.cartLines.firstChild);
    items.forEach(function (it) {
      var p = state.byId[it.id];
      var li = document.createElement('li');
      li.className = 'cart-line';

      var name = document.createElement('span');
      name.className = 'cart-line-name';
      name.textContent = p.name;

      var qty = document.createElement('span');
      qty.className = 'cart-line-qty';
      qty.textContent = '\u00d7\u00a0' + it.quantity;

      var amount = document.createElement('span');
      amount.className = 'cart-line-amount';
      amount.textContent = Shop.formatMoney(p.unitAmount * it.quantity, p.currency);

      var remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'cart-line-remove';
      remove.setAttribute('aria-label', 'Remove ' + p.name + ' from cart');
      remove.textContent = 'Remove';
      remove.disabled = !!state.embedded;
      remove.addEventListener('click', function () {
        setQty(p.id, 0);
        el.cartTitle.focus();
      });

      li.appendChild(name);
      li.appendChild(qty);
      li.appendChild(amount);
      li.appendChild(remove);
      el.cartLines.appendChild(li);
    });
    el.cartLines.hidden = items.length === 0;
    el.cartEmpty.hidden = items.length > 0;

    var count = itemCount();
    el.cartCount.hidden = count === 0;
    el.cartCount.textContent = count === 1 ? '1 item' : count + ' items';

    // Totals
    var currency = state.products.length ? state.products[0].currency : 'usd';
    var subtotal = localSubtotals().reduce(function (sum, s) { return sum + s.amount; }, 0);
    if (serverTotalsValid()) {
      var s = state.server;
      currency = s.currency;
      subtotal = s.subtotal;
      el.subtotal.textContent = Shop.formatMoney(s.subtotal, s.currency);
      if (s.discount > 0) {
        el.discount.textContent = '\u2212' + Shop.formatMoney(s.discount, s.currency);
        el.discountRow.hidden = false;
      } else {
        el.discount.textContent = '';
        el.discountRow.hidden = true;
      }
      el.total.textContent = Shop.formatMoney(s.total, s.currency);
    } else {
      var text = formatSums(localSubtotals());
      el.subtotal.textContent = text;
      el.discount.textContent = '';
      el.discountRow.hidden = true;
      el.total.textContent = text;
    }
    renderShippingAndTax(items, subtotal, currency);

    var barCount = count === 1 ? '1 item' : count + ' items';
    el.cartBar.hidden = count === 0 || !!state.embedded;
    el.cartBarCount.textContent = barCount;
    el.cartBarTotal.textContent = el.total.textContent;

    el.checkout.disabled = state.checkoutBusy || items.length === 0 || !!state.embedded;
  }

  /** What checkout will add, in words that match the configuration: the catalog's shipping
   *  rates when something ships, and whether Stripe Tax adds tax. */
  function renderShippingAndTax(items, subtotal, currency) {
    var ships = items.some(function (it) { return state.byId[it.id].shippable; });
    var notes = [];
    el.shippingRow.hidden = items.length === 0;
    if (ships && state.shippingRates.length) {
      var cheapest = state.shippingRates.reduce(function (min, r) {
        var amount = r.freeFrom !== null && subtotal >= r.freeFrom ? 0 : r.amount;
        return Math.min(min, amount);
      }, Infinity);
      el.shipping.textContent = cheapest === 0 ? 'Free option at checkout' : 'From ' + Shop.formatMoney(cheapest, currency);
      var free = state.shippingRates.filter(function (r) { return r.freeFrom !== null; })[0];
      notes.push('You choose shipping at checkout' +
        (free && subtotal < free.freeFrom ? '; ' + free.name.toLowerCase() + ' is free from ' + Shop.formatMoney(free.freeFrom, currency) : '') + '.');
    } else {
      el.shipping.textContent = items.length ? 'Nothing to ship' : '';
    }
    el.taxRow.hidden = items.length === 0 || !state.automaticTax;
    if (state.automaticTax) {
      el.tax.textContent = state.taxIncluded ? 'Included' : 'At checkout';
      notes.push(state.taxIncluded
        ? 'Prices include tax.'
        : 'Tax is added at checkout, based on your address.');
    } else if (items.length) {
      notes.push('No tax is added at checkout.');
    }
    var adds = [];
    if (ships && state.shippingRates.length) adds.push('shipping');
    if (state.automaticTax && !state.taxIncluded) adds.push('tax');
    el.totalLabel.textContent = adds.length ? 'Total before ' + adds.join(' and ') : 'Total';
    el.totalsNote.textContent = notes.join(' ');
  }

  function scheduleAnnounce() {
    clearTimeout(state.announceTimer);
    state.announceTimer = setTimeout(function () {
      var n = itemCount();
      el.cartAnnounce.textContent = n === 0
        ? 'Your cart is empty.'
        : 'Cart updated: ' + (n === 1 ? '1 item' : n + ' items') + ', total ' + el.total.textContent + '.';
    }, 800);
  }

  // ------------------------------------------------------------ discount code

  function setCodeStatus(text, isError) {
    el.codeStatus.textContent = text || '';
    el.codeStatus.classList.toggle('is-error', !!isError);
  }

  function setApplyBusy(busy) {
    el.applyCode.setAttribute('aria-busy', busy ? 'true' : 'false');
    el.applyCode.disabled = busy || !!state.applyCooldownTimer;
  }

  /** A small ribbon telling shoppers (and the owner) that no real payment happens. */
  function showTestModeRibbon() {
    if ($('test-mode-ribbon')) return;
    var ribbon = document.createElement('p');
    ribbon.id = 'test-mode-ribbon';
    ribbon.className = 'test-mode-ribbon';
    ribbon.textContent = 'Test mode';
    ribbon.title = 'This shop uses Stripe test keys: no real payment is taken.';
    document.body.appendChild(ribbon);
  }

  /** The 429 for discount codes: removing the code is the way on. */
  function codeLimitMessage(retryAfter) {
    var msg = CODE_LIMIT_MESSAGE;
    if (retryAfter) msg += ', or try again in ' + retryAfter + (retryAfter === 1 ? ' second' : ' seconds');
    return msg + '.';
  }

  function startApplyCooldown(seconds) {
    clearTimeout(state.applyCooldownTimer);
    state.applyCooldownTimer = setTimeout(function () {
      state.applyCooldownTimer = null;
      el.applyCode.disabled = false;
    }, Math.min(seconds || 5, 120) * 1000);
    el.applyCode.disabled = true;
  }

  function validServerTotals(d) {
    return d && typeof d === 'object' &&
      Shop.isCurrencyCode(d.currency) &&
      isNonNegInt(d.subtotal) && isNonNegInt(d.discount) && isNonNegInt(d.total);
  }

  function applyCode(opts) {
    opts = opts || {};
    clearTimeout(state.revalidateTimer);
    var code = currentCode();
    var items = cartItems();

    if (!code) {
      state.applySeq++;
      state.appliedCode = '';
      state.server = null;
      setApplyBusy(false);
      setCodeStatus(opts.auto ? '' : 'Enter a discount code, then choose Apply.');
      renderCart();
      return;
    }
    if (items.length === 0) {
      state.applySeq++;
      setApplyBusy(false);
      setCodeStatus(opts.auto ? '' : 'Add something to your cart first, then apply your code.');
      return;
    }

    var seq = ++state.applySeq;
    var key = JSON.stringify(items);
    state.appliedCode = code;
    state.server = null;
    setApplyBusy(true);
    setCodeStatus('Updating totals\u2026');
    renderCart();

    Shop.api('/api/apply-discount', {
      method: 'POST',
      body: { code: code, items: items }
    }).then(function (res) {
      if (seq !== state.applySeq) return; // superseded by a newer request / cart change
      setApplyBusy(false);

      if (res.ok && validServerTotals(res.data)) {
        if (key !== cartKey() || code !== currentCode()) return;
        state.server = {
          key: key,
          code: code,
          currency: res.data.currency.toLowerCase(),
          subtotal: res.data.subtotal,
          discount: res.data.discount,
          total: res.data.total
        };
        // A code that lowers the total says so; every other outcome reads the same.
        setCodeStatus(res.data.discount > 0
          ? code.toUpperCase() + ' applied: ' + '\u2212' + Shop.formatMoney(res.data.discount, res.data.currency) + '.'
          : NEUTRAL_CODE_MESSAGE);
      } else {
        state.server = null;
        if (res.status === 429) {
          startApplyCooldown(res.retryAfter);
          setCodeStatus(codeLimitMessage(res.retryAfter), true);
        } else {
          var err = Shop.describeError(res, 'We couldn\u2019t update the totals right now. Please try again.');
          setCodeStatus(err.text, true);
        }
      }
      renderCart();
      scheduleAnnounce();
    });
  }

  function onCodeInput() {
    var code = currentCode();
    state.cart.code = el.code.value.slice(0, 64);
    Shop.saveCart(state.cart);
    if (code !== state.appliedCode) {
      clearTimeout(state.revalidateTimer);
      if (state.appliedCode || state.server) {
        state.applySeq++;
        state.appliedCode = '';
        state.server = null;
        setApplyBusy(false);
        renderCart();
      }
      setCodeStatus('');
    }
  }

  // ------------------------------------------------------------ checkout

  function setCheckoutBusy(busy, label) {
    state.checkoutBusy = busy;
    el.checkout.textContent = busy ? (label || CHECKOUT_BUSY_LABEL) : CHECKOUT_LABEL;
    el.checkout.setAttribute('aria-busy', busy ? 'true' : 'false');
    el.checkout.classList.toggle('is-busy', busy);
    renderCart();
  }

  function safeRedirectUrl(raw) {
    if (typeof raw !== 'string' || !raw) return null;
    try {
      var u = new URL(raw, window.location.href);
      if (u.protocol === 'https:' || u.protocol === 'http:') return u.href;
    } catch (e) { /* fall through */ }
    return null;
  }

  function showCheckoutError(text, reference) {
    Shop.setMessage(el.message, text, 'error', reference);
  }

  function startCheckout() {
    if (state.checkoutBusy || state.embedded) return;
    var items = cartItems();
    if (items.length === 0) return;

    clearTimeout(state.revalidateTimer);
    Shop.setMessage(el.message, '');
    setCheckoutBusy(true, state.uiMode === 'embedded_page' ? EMBEDDED_BUSY_LABEL : CHECKOUT_BUSY_LABEL);

    var body = { items: items };
    var code = currentCode();
    if (code) body.code = code;

    Shop.api('/api/create-checkout', { method: 'POST', body: body }).then(function (res) {
      var data = res.data;
      if (res.ok && data && typeof data.url === 'string') {
        var url = safeRedirectUrl(data.url);
        if (!url) {
          setCheckoutBusy(false);
          showCheckoutError('The checkout page could not be opened. Please try again.');
          return;
        }
        // Keep the button disabled: we're leaving the page.
        window.location.assign(url);
        return;
      }
      if (res.ok && data && typeof data.client_secret === 'string' && data.client_secret) {
        mountEmbedded(data.client_secret);
        return;
      }
      setCheckoutBusy(false);
      if (res.ok) {
        showCheckoutError('The checkout could not be started. Please try again.');
        return;
      }
      if (res.status === 429 && code) {
        showCheckoutError(codeLimitMessage(res.retryAfter));
        return;
      }
      var stockMessage = res.status === 409 && data && data.error && typeof data.error.message === 'string'
        ? data.error.message : '';
      if (/^(.{1,200} is sold out|only \d{1,7} left of .{1,200})$/.test(stockMessage)) {
        // Limited stock: the server's word is the truth (the product list may be minutes old).
        showCheckoutError(stockMessage.charAt(0).toUpperCase() + stockMessage.slice(1) + '. Please change your cart.');
        return;
      }
      var err = Shop.describeError(res, 'The checkout could not be started. Please try again.');
      showCheckoutError(err.text, err.reference);
    });
  }

  // ------------------------------------------------------------ embedded checkout

  var stripeJsPromise = null;

  function loadStripeJs() {
    if (typeof window.Stripe === 'function') return Promise.resolve(window.Stripe);
    if (stripeJsPromise) return stripeJsPromise;
    var script = document.createElement('script');
    stripeJsPromise = new Promise(function (resolve, reject) {
      script.src = STRIPE_JS_URL;
      script.async = true;
      script.addEventListener('load', function () {
        if (typeof window.Stripe === 'function') resolve(window.Stripe);
        else reject(new Error('Stripe.js unavailable'));
      });
      script.addEventListener('error', function () {
        reject(new Error('Stripe.js failed to load'));
      });
      document.head.appendChild(script);
    }).catch(function (e) {
      // Allow a later retry with a fresh <script>.
      stripeJsPromise = null;
      if (script.parentNode) script.parentNode.removeChild(script);
      throw e;
    });
    return stripeJsPromise;
  }

  function mountEmbedded(clientSecret) {
    if (!state.publishableKey) {
      setCheckoutBusy(false);
      showCheckoutError('Secure checkout is not available right now. Please try again later.');
      return;
    }
    loadStripeJs().then(function (StripeFn) {
      if (!state.stripe) state.stripe = StripeFn(state.publishableKey);
      var stripe = state.stripe;
      var options = {
        fetchClientSecret: function () { return Promise.resolve(clientSecret); }
      };
      // Newer Stripe.js exposes createEmbeddedCheckoutPage; older ones initEmbeddedCheckout.
      var factory = typeof stripe.initEmbeddedCheckout === 'function'
        ? stripe.initEmbeddedCheckout
        : stripe.createEmbeddedCheckoutPage;
      if (typeof factory !== 'function') throw new Error('Embedded checkout unsupported');
      return Promise.resolve(factory.call(stripe, options));
    }).then(function (checkout) {
      state.embedded = checkout;
      el.shopLayout.hidden = true;
      el.intro.hidden = true;
      el.embeddedSection.hidden = false;
      el.embeddedCheckout.hidden = false;
      checkout.mount('#embedded-checkout');
      setCheckoutBusy(false);
      el.embeddedTitle.focus();
      if (el.embeddedSection.scrollIntoView) el.embeddedSection.scrollIntoView({ block: 'start' });
    }).catch(function () {
      closeEmbedded(false);
      setCheckoutBusy(false);
      showCheckoutError('The secure checkout could not be loaded. Check your connection and try again.');
    });
  }

  function closeEmbedded(moveFocus) {
    if (state.embedded) {
      try { state.embedded.destroy(); } catch (e) { /* ignore */ }
      state.embedded = null;
    }
    el.embeddedCheckout.hidden = true;
    el.embeddedSection.hidden = true;
    el.shopLayout.hidden = false;
    el.intro.hidden = false;
    renderAll();
    if (moveFocus) el.checkout.focus();
  }

  // ------------------------------------------------------------ boot

  function init() {
    el.products = $('products');
    el.productsLoading = $('products-loading');
    el.productsError = $('products-error');
    el.productsErrorText = $('products-error-text');
    el.productsRetry = $('products-retry');
    el.cartTitle = $('cart-title');
    el.cartCount = $('cart-count');
    el.cartEmpty = $('cart-empty');
    el.cartLines = $('cart-lines');
    el.codeForm = $('code-form');
    el.code = $('code');
    el.applyCode = $('apply-code');
    el.codeStatus = $('code-status');
    el.subtotal = $('subtotal');
    el.discount = $('discount');
    el.discountRow = $('discount-row');
    el.total = $('total');
    el.totalLabel = $('total-label');
    el.totalsNote = $('totals-note');
    el.shipping = $('shipping');
    el.shippingRow = $('shipping-row');
    el.tax = $('tax');
    el.taxRow = $('tax-row');
    el.cartBar = $('cart-bar');
    el.cartBarCount = $('cart-bar-count');
    el.cartBarTotal = $('cart-bar-total');
    el.checkout = $('checkout');
    el.message = $('message');
    el.cartAnnounce = $('cart-announce');
    el.shopLayout = $('shop-layout');
    el.intro = $('intro');
    el.embeddedSection = $('embedded-section');
    el.embeddedTitle = $('embedded-title');
    el.embeddedClose = $('embedded-close');
    el.embeddedCheckout = $('embedded-checkout');

    state.cart = Shop.loadCart();

    el.codeForm.addEventListener('submit', function (e) {
      e.preventDefault();
      if (el.applyCode.disabled) return;
      applyCode({ auto: false });
    });
    el.code.addEventListener('input', onCodeInput);
    el.checkout.addEventListener('click', startCheckout);
    el.productsRetry.addEventListener('click', loadProducts);
    el.embeddedClose.addEventListener('click', function () { closeEmbedded(true); });

    // Coming back from the hosted page via the back button (bfcache):
    // make the checkout button usable again.
    window.addEventListener('pageshow', function (e) {
      if (e.persisted && state.checkoutBusy) setCheckoutBusy(false);
    });

    // Another tab changed the cart? sessionStorage is per-tab, so nothing to sync.
    loadProducts();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
