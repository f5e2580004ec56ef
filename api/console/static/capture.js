// Rongxin console: the legal centre's one-click capture (docs/console.md §6).
//
// The identity's key (key.pem, PKCS#8) is parsed here and kept in this closure only: never
// sent, never stored (no cookie, no storage API), dropped by "Forget the key" or a reload.
// SM2/SM3 come from sm-crypto (globals sm2, sm3) and the zip reader/writer from fflate
// (global fflate), all served by the node (/console/vendor/). Everything shown that came from
// the node or the user is set with textContent, never as markup.
"use strict";
(function () {
  var root = document.getElementById("capture");
  if (!root) { return; }
  var C = JSON.parse(root.getAttribute("data-constants"));
  var ID_RE = new RegExp("^(?:" + C.id_re + ")$");
  var HEX64 = /^[0-9a-f]{64}$/;
  var SM2_OID = "2a811ccf5501822d";      // 1.2.156.10197.1.301
  var EC_OID = "2a8648ce3d0201";         // 1.2.840.10045.2.1
  var MAX_PEM = 65536;
  var MAX_PACKAGE = 512 * 1024 * 1024;
  var PACKAGE_WAIT_MS = 60000;
  var ident = null;                      // {d, pub, account, certDer, certB64, fingerprint}
  var last = null;                       // the filing just made: {evidence_id, chain}
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return root.getAttribute("data-" + name) || name; };

  // ------------------------------------------------------------ bytes
  var enc = new TextEncoder();
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

  // ------------------------------------------------------------ SM2 signatures
  var BigInt16 = null;
  function freshPoint() {
    // k from the browser's CSPRNG (320 bits reduced mod n-1, plus 1), not jsbn's RC4-based
    // generator: sm-crypto's documented pointPool option takes the (k, x1 = (kG).x) pair.
    var kp = sm2.generateKeyPairHex(randomHex(40), 16);
    if (BigInt16 === null) { BigInt16 = sm2.getPoint().k.constructor; }
    return {k: new BigInt16(kp.privateKey, 16), x1: new BigInt16(kp.publicKey.substr(2, 64), 16)};
  }
  function signHex(bytes) {           // DER SEQUENCE{r, s}, SM3(Z || message), Z with the signer id
    return sm2.doSignature(bytes, ident.d, {der: true, hash: true, publicKey: ident.pub, userId: C.signer_id,
                                            pointPool: [freshPoint()]});
  }

  // ------------------------------------------------------------ identity
  function loadIdentity(files) {
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
      var d = privateScalar(key);
      var pub = sm2.getPublicKeyFromPrivateKey(d);
      if (certificatePoint(cert) !== pub) { throw new Error("cert.pem is not the certificate of this key"); }
      ident = {d: d, pub: pub, account: sm3hex(unhex(pub)).slice(0, 40), certDer: cert, certB64: b64(cert),
               fingerprint: sm3hex(cert)};
      $("id-status").textContent = msg("loaded") + " · " + msg("account") + " " + ident.account;
      $("id-status").className = "ok";
      $("go").disabled = false;
      $("id-forget").disabled = false;
    });
  }
  function forget() {
    ident = null;
    $("id-files").value = "";
    $("id-status").textContent = "–";
    $("id-status").className = "muted";
    $("go").disabled = true;
    $("id-forget").disabled = true;
  }

  // ------------------------------------------------------------ signed requests (docs/api-auth.md)
  function NodeError(status, code, message) { this.status = status; this.code = code; this.message = message; }
  NodeError.prototype = Object.create(Error.prototype);
  function signedHeaders(method, target, body) {
    var ts = String(Math.floor(Date.now() / 1000)), nonce = randomHex(16), bodySm3 = sm3hex(body);
    var line = [C.scheme, method, target, bodySm3, ts, nonce].join("\n");
    return {"X-Rongxin-Certificate": ident.certB64, "X-Rongxin-Signature": b64(unhex(signHex(utf8(line)))),
            "X-Rongxin-Timestamp": ts, "X-Rongxin-Nonce": nonce, "X-Rongxin-Content-SM3": bodySm3};
  }
  function call(method, target, body, signed) {
    var bytes = body === undefined ? [] : utf8(body);
    var headers = signed ? signedHeaders(method, target, bytes) : {};
    headers.Accept = "application/json";
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(target, {method: method, headers: headers, body: body === undefined ? undefined : new Uint8Array(bytes),
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

  // ------------------------------------------------------------ progress
  function stage(name, state, note) {
    var li = document.querySelector('#stages li[data-stage="' + name + '"]');
    li.querySelector(".state").textContent = msg(state);
    li.className = state;
    li.querySelector(".note").textContent = note || "";
  }
  function resetStages() {
    ["env", "capture", "match", "check", "file", "confirm"].forEach(function (s) { stage(s, "waiting"); });
    $("error").hidden = true;
    $("result").hidden = true;
  }
  function showError(e) {
    var text = e instanceof NodeError ? e.code + " (" + e.status + "): " + e.message : String(e && e.message || e);
    $("error").textContent = msg("error") + ": " + text;
    $("error").hidden = false;
  }

  // ------------------------------------------------------------ the manifest check (api/sdk_capture.py)
  var MANIFEST_FIELDS = ["artefacts", "capture", "chain", "created_ms", "evidence_id", "filer", "upload", "version", "works"];
  var ARTEFACT_FIELDS = ["matches", "media_type", "name", "role", "size", "sm3"];
  function need(ok, why) { if (!ok) { throw new Error("refusing to sign the manifest the node prepared: " + why); } }
  function sameSet(keys, want) { return canon(keys.slice().sort(byCodePoint)) === canon(want); }
  function checkManifest(prep, chain, url) {
    need(prep && typeof prep.manifest === "object" && prep.manifest !== null, "no manifest");
    var m = prep.manifest;
    need(sameSet(Object.keys(m), MANIFEST_FIELDS), "its fields are " + Object.keys(m).join(","));
    need(m.version === C.manifest_version, "version " + m.version);
    need(m.chain === chain, "it is for chain " + m.chain + ", not " + chain);
    need(m.filer === ident.account, "it names filer " + String(m.filer).slice(0, 80) + ", not this identity");
    need(typeof m.evidence_id === "string" && ID_RE.test(m.evidence_id) && prep.evidence_id === m.evidence_id,
         "its evidence id is malformed or differs");
    need(m.capture && m.capture.source === url.slice(0, 1024), "it does not name the address asked for");
    need(Number.isSafeInteger(m.created_ms) && Math.abs(m.created_ms - Date.now()) <= C.clock_slack_ms,
         "its time is not this computer's clock");
    need(Array.isArray(m.artefacts) && m.artefacts.length > 0, "no artefacts");
    m.artefacts.forEach(function (a) {
      need(a && typeof a === "object" && sameSet(Object.keys(a).filter(function (k) { return k !== "note"; }), ARTEFACT_FIELDS),
           "an artefact has other fields");
      need(C.capture_roles.indexOf(a.role) >= 0 && Array.isArray(a.matches), "an artefact's role or matches");
      need(typeof a.sm3 === "string" && HEX64.test(a.sm3) && Number.isSafeInteger(a.size) && a.size >= 0,
           "an artefact's SM3 or size");
    });
    var named = [];
    m.artefacts.forEach(function (a) {
      a.matches.forEach(function (x) { if (x && named.indexOf(String(x.work_id)) < 0) { named.push(String(x.work_id)); } });
    });
    named.sort(byCodePoint);
    need(canon(m.works) === canon(named) && named.length <= C.max_capture_works, "its works are not exactly the works matched");
    canon(m);  // every value has a canonical form (else signing it would sign something else)
    return m;
  }

  // ------------------------------------------------------------ cases and the filing (api/sdk_capture.py)
  function caseFor(workId) {
    var base = ("c-" + workId + "-" + ident.account.slice(0, 12)).slice(0, 128);
    function attempt(n) {
      if (n >= 64) { return Promise.reject(new Error("no free case id for work " + workId)); }
      var cid = n === 1 ? base : base.slice(0, 120) + "-" + n;
      return json("GET", "/v1/cases/" + encodeURIComponent(cid), undefined, true).then(function (c) {
        return c.state !== "closed" ? {id: cid, exists: true} : attempt(n + 1);
      }, function (e) {
        if (e instanceof NodeError && e.status === 404) { return {id: cid, exists: false}; }
        if (e instanceof NodeError && e.status === 403) { return attempt(n + 1); }
        throw e;
      });
    }
    return attempt(1);
  }
  function buildCases(works) {
    return works.reduce(function (p, wid) {
      return p.then(function (acc) {
        return caseFor(wid).then(function (c) {
          var entry = {case_id: c.id, work_id: wid};
          if (c.exists) { acc.push(entry); return acc; }
          return json("GET", "/v1/works/" + encodeURIComponent(wid), undefined, false).then(function (w) {
            entry.parties = [String(w.holder)];
            acc.push(entry);
            return acc;
          });
        });
      });
    }, Promise.resolve([]));
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

  // ------------------------------------------------------------ showing the result
  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function link(href, text) { var a = document.createElement("a"); a.href = href; a.textContent = text; return a; }
  function clearRows(table) { while (table.rows.length > 1) { table.deleteRow(1); } }
  function showResult(filed, prep, m) {
    $("r-evidence").textContent = filed.evidence_id;
    $("r-tx").href = "/txs/" + encodeURIComponent(filed.tx_id);
    $("r-tx").firstChild.textContent = filed.tx_id;
    $("r-height").href = "/blocks/" + encodeURIComponent(filed.height);
    $("r-height").textContent = String(filed.height);
    var cases = $("r-cases");
    cases.textContent = (filed.case_ids || []).length ? "" : "–";
    (filed.case_ids || []).forEach(function (c, i) {
      if (i) { cases.appendChild(document.createTextNode(", ")); }
      var code = document.createElement("code"); code.textContent = c; cases.appendChild(code);
    });
    var mt = $("r-matches");
    clearRows(mt);
    (prep.matches || []).forEach(function (shown) {
      (shown.matches || []).forEach(function (x) {
        var tr = mt.insertRow();
        var td = cell(tr, "");
        td.appendChild(link("/works/" + encodeURIComponent(x.work_id), String(x.work_id)));
        cell(tr, String(shown.file));
        cell(tr, typeof x.score === "number" ? x.score.toFixed(3) : String(x.score));
        cell(tr, x.work_start_s == null ? "–" : String(x.work_start_s));
        cell(tr, x.query_start_s == null ? "–" : String(x.query_start_s));
        tr.setAttribute("data-work", String(x.work_id));
      });
    });
    var at = $("r-artefacts");
    clearRows(at);
    m.artefacts.forEach(function (a) {
      var tr = at.insertRow();
      cell(tr, a.name); cell(tr, a.role); cell(tr, String(a.size));
      var c = document.createElement("code"); c.textContent = a.sm3.slice(0, 16) + "\u2026"; c.title = a.sm3;
      cell(tr, "").appendChild(c);
    });
    $("result").hidden = false;
    $("package").disabled = false;
  }

  // ------------------------------------------------------------ the one click
  function run(url) {
    var chain, height, prep, m, filed, tx;
    resetStages();
    $("go").disabled = true;
    return json("GET", "/v1/status", undefined, false).then(function (s) {
      chain = String(s.chain);
      height = Number(s.height);
      ["env", "capture", "match"].forEach(function (x) { stage(x, "running"); });
      return json("POST", "/v1/evidence/capture", JSON.stringify({url: url}), true).catch(function (e) {
        var envFault = e instanceof NodeError && e.code === "capture_refused" && e.status === 503;
        stage("env", envFault ? "failed" : "unknown", envFault ? e.message : "");
        stage("capture", envFault ? "stopped" : "failed", envFault ? "" : e.message);
        stage("match", "stopped");
        throw e;
      });
    }).then(function (p) {
      prep = p;
      var arts = (p.manifest && Array.isArray(p.manifest.artefacts)) ? p.manifest.artefacts : [];
      var roles = arts.map(function (a) { return a.role; });
      stage("env", roles.indexOf("environment") >= 0 ? "done" : "failed",
            roles.indexOf("environment") >= 0 ? "" : "no environment report in the answer");
      stage("capture", "done", String(arts.length) + " " + msg("artefacts"));
      var count = (p.matches || []).reduce(function (n, x) { return n + (x.matches || []).length; }, 0);
      stage("match", "done", String(count) + " " + msg("matches") + ", " + String((p.works || []).length) + " " + msg("works"));
      stage("check", "running");
      m = checkManifest(p, chain, url);
      return buildCases(m.works);
    }).then(function (cases) {
      var payload = {evidence_id: prep.evidence_id, manifest: m,
                     signature: signHex(utf8(canon({manifest: m, purpose: C.manifest_purpose})))};
      if (cases.length) { payload.cases = cases; }
      tx = transaction(chain, height, "evidence.file", payload);
      stage("check", "done");
      stage("file", "running");
      return json("POST", "/v1/evidence", tx.wire, true);
    }).then(function (f) {
      filed = f;
      if (f.tx_id !== tx.id || f.evidence_id !== prep.evidence_id) {
        throw new Error("the node's answer names another transaction or evidence id");
      }
      stage("file", "done", String(f.tx_id).slice(0, 16) + "\u2026");
      stage("confirm", "running");
      return json("GET", "/v1/txs/" + encodeURIComponent(f.tx_id), undefined, false);
    }).then(function (rec) {
      if (!rec || rec.status !== "committed" || !rec.receipt || rec.receipt.code !== 0) {
        throw new Error("the chain does not show the filing committed and accepted");
      }
      stage("confirm", "done", msg("block") + " " + String(rec.height) + ", " + msg("accepted"));
      last = {evidence_id: filed.evidence_id, chain: chain, tx_id: tx.id};
      showResult(filed, prep, m);
    }).catch(function (e) {
      ["check", "file", "confirm"].forEach(function (x) {
        var li = document.querySelector('#stages li[data-stage="' + x + '"]');
        if (li.className === "running") { stage(x, "failed", e.message); }
      });
      showError(e);
    }).then(function () { $("go").disabled = ident === null; });
  }

  // ------------------------------------------------------------ the package (api/sdk_evidence.export_evidence)
  function fetchPackage(target, deadline) {
    return call("GET", target, undefined, true).catch(function (e) {
      if (e instanceof NodeError && e.code === "not_yet_provable" && Date.now() < deadline) {
        return new Promise(function (res) { setTimeout(res, 700); }).then(function () { return fetchPackage(target, deadline); });
      }
      throw e;
    });
  }
  function signPackage(buf) {
    var files = fflate.unzipSync(buf);
    var mb = files["manifest.json"];
    if (!mb || files["manifest.sig"]) { throw new Error("the package has no manifest.json, or is already signed"); }
    var pm = JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(mb));
    if (pm.chain !== last.chain || !pm.filer || pm.filer.certificate !== ident.fingerprint) {
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
    var at = (pm.statements || []).map(function (x) { return x && x.tx; }).indexOf(last.tx_id);
    var st = at < 0 ? null : JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(files["statements.json"] || new Uint8Array(0)));
    var body = st && Array.isArray(st.statements) && st.statements[at] && st.statements[at].tx && st.statements[at].tx.body;
    if (!body || body.type !== "evidence.file" || !body.payload || body.payload.evidence_id !== last.evidence_id) {
      throw new Error("the package holds no statement of the evidence.file this page signed");
    }
    files["manifest.sig"] = unhex(signHex(Array.from(mb)));  // the filer's signature over manifest.json
    return fflate.zipSync(files, {level: 0});
  }
  function downloadPackage() {
    if (!last || !ident) { return; }
    var target = "/v1/evidence/" + encodeURIComponent(last.evidence_id) + "/package";
    $("package").disabled = true;
    $("package-state").textContent = msg("saving") + "\u2026";
    fetchPackage(target, Date.now() + PACKAGE_WAIT_MS).then(function (r) {
      var size = Number(r.headers.get("Content-Length") || 0);
      if (size > MAX_PACKAGE) { throw new Error("the package is over " + MAX_PACKAGE + " bytes"); }
      return r.arrayBuffer();
    }).then(function (ab) {
      if (ab.byteLength > MAX_PACKAGE) { throw new Error("the package is over " + MAX_PACKAGE + " bytes"); }
      var zip = signPackage(new Uint8Array(ab));
      var a = $("package-link");
      if (a.href && a.href.indexOf("blob:") === 0) { URL.revokeObjectURL(a.href); }
      a.href = URL.createObjectURL(new Blob([zip], {type: "application/zip"}));
      a.download = last.evidence_id + ".zip";
      a.textContent = msg("save-again") + " (" + a.download + ")";
      a.hidden = false;
      $("package-state").textContent = String(zip.length) + " bytes";
      a.click();
    }).catch(function (e) {
      $("package-state").textContent = "";
      showError(e);
    }).then(function () { $("package").disabled = false; });
  }

  // ------------------------------------------------------------ wiring
  if (root.getAttribute("data-ready") !== "yes" || typeof sm2 === "undefined" || typeof sm3 === "undefined" ||
      typeof fflate === "undefined") {
    $("error").textContent = msg("no-lib");
    $("error").hidden = false;
    $("id-files").disabled = true;
    return;
  }
  $("id-files").addEventListener("change", function (ev) {
    forgetQuiet();
    loadIdentity(ev.target.files).catch(function (e) { forget(); showError(e); });
  });
  function forgetQuiet() { ident = null; $("go").disabled = true; $("error").hidden = true; }
  $("id-forget").addEventListener("click", forget);
  $("capture-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!ident) { return; }
    run($("url").value.trim());
  });
  $("package").addEventListener("click", downloadPackage);
})();
