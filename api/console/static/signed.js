// Rongxin console: what every signed-in page shares (docs/console.md §6): bytes, canonical
// JSON, reading key.pem/cert.pem, SM2 signatures, signed requests (docs/api-auth.md),
// transactions and the check-and-sign of an evidence package the node made out to this page.
//
// window.RxSigned.session(root) gives a page script a session object; the page keeps it in its
// own closure. The identity's key (the SM2 scalar) lives only inside that session's closure:
// never sent, never stored (no cookie, no storage API), not a property of any object, dropped
// by forget() or a reload. SM2/SM3 come from sm-crypto (globals sm2, sm3), the zip reader and
// writer from fflate (global fflate), all served by the node (/console/vendor/).
"use strict";
window.RxSigned = (function () {
  var SM2_OID = "2a811ccf5501822d";      // 1.2.156.10197.1.301
  var EC_OID = "2a8648ce3d0201";         // 1.2.840.10045.2.1
  var MAX_PEM = 65536;
  var enc = new TextEncoder();

  // ------------------------------------------------------------ bytes
  function utf8(s) { return Array.from(enc.encode(s)); }
  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }
  function unhex(h) {
    var out = new Uint8Array(h.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(h.substr(i * 2, 2), 16); }
    return out;
  }
  function b64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s);
  }
  function randomHex(n) { var b = new Uint8Array(n); crypto.getRandomValues(b); return hex(b); }
  function sm3hex(bytes) { return sm3(Array.isArray(bytes) ? bytes : Array.from(bytes)); }

  // ------------------------------------------------------------ canonical JSON (ledger/codec.py)
  var LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  function byCodePoint(a, b) {
    var x = Array.from(a), y = Array.from(b);
    for (var i = 0; i < Math.min(x.length, y.length); i++) {
      var d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d !== 0) { return d; }
    }
    return x.length - y.length;
  }
  function canon(v) {
    if (v === null) { return "null"; }
    if (v === true || v === false) { return String(v); }
    if (typeof v === "bigint") { return v.toString(); }
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) { throw new Error("a number that is not a safe integer has no canonical form"); }
      return String(v);
    }
    if (typeof v === "string") {
      if (LONE.test(v)) { throw new Error("a string holds a lone surrogate"); }
      return JSON.stringify(v);
    }
    if (Array.isArray(v)) { return "[" + v.map(canon).join(",") + "]"; }
    if (typeof v === "object") {
      return "{" + Object.keys(v).sort(byCodePoint).map(function (k) { return canon(k) + ":" + canon(v[k]); }).join(",") + "}";
    }
    throw new Error("no canonical form for " + typeof v);
  }

  // ------------------------------------------------------------ DER and PEM (reading only)
  function tlv(b, at) {
    if (at + 2 > b.length) { throw new Error("truncated DER"); }
    var tag = b[at], len = b[at + 1], hdr = 2;
    if (len & 0x80) {
      var n = len & 0x7f;
      if (n < 1 || n > 3 || at + 2 + n > b.length) { throw new Error("bad DER length"); }
      len = 0;
      for (var i = 0; i < n; i++) { len = len * 256 + b[at + 2 + i]; }
      hdr = 2 + n;
    }
    if (at + hdr + len > b.length) { throw new Error("truncated DER"); }
    return {tag: tag, start: at + hdr, end: at + hdr + len};
  }
  function children(b, t) {
    var out = [], at = t.start;
    while (at < t.end) { var c = tlv(b, at); out.push(c); at = c.end; }
    return out;
  }
  function pem(text, label) {
    var m = new RegExp("-----BEGIN " + label + "-----([A-Za-z0-9+/=\\s]+)-----END " + label + "-----").exec(text);
    if (!m) { return null; }
    var raw = atob(m[1].replace(/\s+/g, ""));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function privateScalar(der) {       // PKCS#8 PrivateKeyInfo holding an SM2 ECPrivateKey
    var top = children(der, tlv(der, 0));
    var alg = children(der, top[1]).map(function (c) { return hex(der.subarray(c.start, c.end)); });
    if (top[0].tag !== 2 || alg[0] !== EC_OID || alg[1] !== SM2_OID || top[2].tag !== 4) {
      throw new Error("key.pem is not an SM2 private key (PKCS#8)");
    }
    var ec = children(der, tlv(der, top[2].start));
    if (ec[1].tag !== 4 || ec[1].end - ec[1].start !== 32) { throw new Error("key.pem: no 32-byte SM2 scalar"); }
    return hex(der.subarray(ec[1].start, ec[1].end));
  }
  function certificatePoint(der) {    // tbsCertificate.subjectPublicKeyInfo's BIT STRING
    var tbs = children(der, children(der, tlv(der, 0))[0]);
    var spki = children(der, tbs[tbs[0].tag === 0xa0 ? 6 : 5]);
    if (spki[1].tag !== 3 || der[spki[1].start] !== 0) { throw new Error("cert.pem: no public key"); }
    return hex(der.subarray(spki[1].start + 1, spki[1].end));
  }

  // ------------------------------------------------------------ SM2 nonces
  var BigInt16 = null;
  function freshPoint() {
    // k from the browser's CSPRNG (320 bits reduced mod n-1, plus 1), not jsbn's RC4-based
    // generator: sm-crypto's documented pointPool option takes the (k, x1 = (kG).x) pair.
    var kp = sm2.generateKeyPairHex(randomHex(40), 16);
    if (BigInt16 === null) { BigInt16 = sm2.getPoint().k.constructor; }
    return {k: new BigInt16(kp.privateKey, 16), x1: new BigInt16(kp.publicKey.substr(2, 64), 16)};
  }

  function NodeError(status, code, message) { this.status = status; this.code = code; this.message = message; }
  NodeError.prototype = Object.create(Error.prototype);

  function ready() { return typeof sm2 !== "undefined" && typeof sm3 !== "undefined" && typeof fflate !== "undefined"; }

  // ------------------------------------------------------------ one page's session
  function session(root) {
    var C = JSON.parse(root.getAttribute("data-constants"));
    var d = null;                        // the SM2 scalar: this closure only
    var ident = null;                    // public facts: {pub, account, certB64, fingerprint}

    function signHex(bytes) {           // DER SEQUENCE{r, s}, SM3(Z || message), Z with the signer id
      if (d === null) { throw new Error("no identity loaded"); }
      return sm2.doSignature(bytes, d, {der: true, hash: true, publicKey: ident.pub, userId: C.signer_id,
                                        pointPool: [freshPoint()]});
    }
    function load(files) {
      var reads = Array.from(files).slice(0, 4).map(function (f) {
        if (f.size > MAX_PEM) { return Promise.reject(new Error(f.name + " is too large for a PEM file")); }
        return f.text();
      });
      return Promise.all(reads).then(function (texts) {
        var key = null, cert = null;
        texts.forEach(function (t) {
          if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(t)) { throw new Error("the key is encrypted: use the identity folder's unencrypted key.pem"); }
          key = key || pem(t, "PRIVATE KEY");
          cert = cert || pem(t, "CERTIFICATE");
        });
        if (!key || !cert) { throw new Error("choose both key.pem and cert.pem"); }
        var scalar = privateScalar(key);
        var pub = sm2.getPublicKeyFromPrivateKey(scalar);
        if (certificatePoint(cert) !== pub) { throw new Error("cert.pem is not the certificate of this key"); }
        d = scalar;
        ident = {pub: pub, account: sm3hex(unhex(pub)).slice(0, 40), certB64: b64(cert), fingerprint: sm3hex(cert)};
        return ident;
      });
    }
    function forget() { d = null; ident = null; }

    // ---------------------------------------------------------- signed requests (docs/api-auth.md)
    function signedHeaders(method, target, bytes) {
      var ts = String(Math.floor(Date.now() / 1000)), nonce = randomHex(16), bodySm3 = sm3hex(bytes);
      var line = [C.scheme, method, target, bodySm3, ts, nonce].join("\n");
      return {"X-Rongxin-Certificate": ident.certB64, "X-Rongxin-Signature": b64(unhex(signHex(utf8(line)))),
              "X-Rongxin-Timestamp": ts, "X-Rongxin-Nonce": nonce, "X-Rongxin-Content-SM3": bodySm3};
    }
    // body: undefined, a string (sent as JSON) or a Uint8Array (sent as application/octet-stream)
    function call(method, target, body, signed) {
      var binary = body instanceof Uint8Array;
      var bytes = body === undefined ? new Uint8Array(0) : (binary ? body : new Uint8Array(utf8(body)));
      var headers = signed ? signedHeaders(method, target, bytes) : {};
      headers.Accept = "application/json";
      if (body !== undefined) { headers["Content-Type"] = binary ? "application/octet-stream" : "application/json"; }
      return fetch(target, {method: method, headers: headers, body: body === undefined ? undefined : bytes,
                            cache: "no-store", credentials: "omit"}).then(function (r) {
        if (r.ok) { return r; }
        return r.text().then(function (t) {
          var e = {};
          try { e = JSON.parse(t).error || {}; } catch (x) { e = {}; }
          throw new NodeError(r.status, e.code || "http_" + r.status, e.message || t.slice(0, 300));
        });
      });
    }
    function json(method, target, body, signed) {
      return call(method, target, body, signed).then(function (r) { return r.json(); });
    }
    function transaction(chain, height, type, payload) {
      var n = new Uint8Array(8);
      crypto.getRandomValues(n);
      n[0] &= 0x7f;                                       // 63 random bits, as the SDK's nonce
      var body = {chain: chain, expiry: height + C.ttl_blocks, nonce: BigInt("0x" + hex(n)), payload: payload,
                  sender: ident.pub, type: type};
      var text = canon(body);
      return {id: sm3hex(utf8(text)), wire: '{"body":' + text + ',"sig":"' + signHex(utf8(text)) + '"}'};
    }

    // ---------------------------------------------------------- a package made out to this identity
    // What api/sdk_check.check_package checks, then manifest.sig added: expect = {chain, tx_id,
    // type, check(body) -> bool}: the statement of this page's transaction must be in it.
    function signPackage(buf, expect) {
      var files = fflate.unzipSync(buf);
      var mb = files["manifest.json"];
      if (!mb || files["manifest.sig"]) { throw new Error("the package has no manifest.json, or is already signed"); }
      var pm = JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(mb));
      if (pm.chain !== expect.chain || !pm.filer || pm.filer.certificate !== ident.fingerprint) {
        throw new Error("the package is for another chain or made out to another certificate");
      }
      if (!Number.isSafeInteger(pm.created_ms) || Math.abs(pm.created_ms - Date.now()) > C.clock_slack_ms) {
        throw new Error("the package's signing time is not this computer's clock");
      }
      var listed = Object.keys(pm.members || {}).sort(byCodePoint);
      var held = Object.keys(files).filter(function (n) { return n !== "manifest.json"; }).sort(byCodePoint);
      if (canon(listed) !== canon(held)) { throw new Error("the package's members are not the ones its manifest lists"); }
      listed.forEach(function (n) {
        var want = pm.members[n];
        if (!want || want.size !== files[n].length || want.sm3 !== sm3hex(files[n])) {
          throw new Error("member " + n + ": SM3 or size recomputed here differ");
        }
      });
      var at = (pm.statements || []).map(function (x) { return x && x.tx; }).indexOf(expect.tx_id);
      var st = at < 0 ? null : JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(files["statements.json"] || new Uint8Array(0)));
      var body = st && Array.isArray(st.statements) && st.statements[at] && st.statements[at].tx && st.statements[at].tx.body;
      if (!body || body.type !== expect.type || !expect.check(body)) {
        throw new Error("the package holds no statement of the " + expect.type + " this identity signed");
      }
      files["manifest.sig"] = unhex(signHex(Array.from(mb)));  // the filer's signature over manifest.json
      return fflate.zipSync(files, {level: 0});
    }

    return {C: C, load: load, forget: forget, identity: function () { return ident; }, sign: signHex, call: call,
            json: json, transaction: transaction, signPackage: signPackage};
  }

  // ------------------------------------------------------------ shared page parts
  function bindIdentity(s, root, onChange) {
    // the file input #id-files, the button #id-forget and the line #id-status of the page
    var $ = function (id) { return document.getElementById(id); };
    var msg = function (name) { return root.getAttribute("data-" + name) || name; };
    function drop() {
      s.forget();
      $("id-files").value = "";
      $("id-status").textContent = "–";
      $("id-status").className = "muted";
      $("id-forget").disabled = true;
      onChange(null);
    }
    $("id-files").addEventListener("change", function (ev) {
      s.forget();
      onChange(null);
      s.load(ev.target.files).then(function (ident) {
        $("id-status").textContent = msg("loaded") + " · " + msg("account") + " " + ident.account;
        $("id-status").className = "ok";
        $("id-forget").disabled = false;
        onChange(ident);
      }).catch(function (e) { drop(); showError(root, e); });
    });
    $("id-forget").addEventListener("click", drop);
  }
  function showError(root, e) {
    var el = document.getElementById("error");
    var text = e instanceof NodeError ? e.code + " (" + e.status + "): " + e.message : String(e && e.message || e);
    el.textContent = (root.getAttribute("data-error") || "Error") + ": " + text;
    el.hidden = false;
  }
  function hideError() { document.getElementById("error").hidden = true; }
  function noLibrary(root) {
    var el = document.getElementById("error");
    el.textContent = root.getAttribute("data-no-lib") || "no signing library";
    el.hidden = false;
    document.getElementById("id-files").disabled = true;
  }
  // A page's session, or null when the page cannot sign (the libraries are not installed):
  // then the page shows why and does nothing else.
  function start(root) {
    if (root.getAttribute("data-ready") !== "yes" || !ready()) {
      noLibrary(root);
      return null;
    }
    return session(root);
  }
  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function link(href, text) { var a = document.createElement("a"); a.href = href; a.textContent = text; return a; }
  function clearRows(table) { while (table.rows.length > 1) { table.deleteRow(1); } }

  return {session: session, ready: ready, NodeError: NodeError, canon: canon, byCodePoint: byCodePoint, utf8: utf8,
          hex: hex, sm3hex: sm3hex, bindIdentity: bindIdentity, showError: showError, hideError: hideError,
          noLibrary: noLibrary, start: start, cell: cell, link: link, clearRows: clearRows};
})();
