// Rongxin console: the legal centre's one-click capture (docs/console.md §6).
//
// The identity's key (key.pem, PKCS#8) is parsed by signed.js and kept in the session's
// closure only: never sent, never stored (no cookie, no storage API), dropped by "Forget the
// key" or a reload. Bytes, canonical JSON, signed requests and the package check: signed.js. Everything shown that came from
// the node or the user is set with textContent, never as markup.
"use strict";
(function () {
  var root = document.getElementById("capture");
  if (!root) { return; }
  var R = window.RxSigned;
  var S = R ? R.start(root) : null;               // holds the key in its own closure (signed.js)
  if (!S) { return; }
  var C = S.C;
  var ID_RE = new RegExp("^(?:" + C.id_re + ")$");
  var HEX64 = /^[0-9a-f]{64}$/;
  var MAX_PACKAGE = 512 * 1024 * 1024;
  var PACKAGE_WAIT_MS = 60000;
  var ident = null;                      // the loaded identity's public facts {pub, account, ...}
  var last = null;                       // the filing just made: {evidence_id, chain, tx_id}
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return root.getAttribute("data-" + name) || name; };
  var canon = R.canon, byCodePoint = R.byCodePoint, utf8 = R.utf8, NodeError = R.NodeError;
  var json = S.json, call = S.call, signHex = S.sign;

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
  function showError(e) { R.showError(root, e); }

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
  // ------------------------------------------------------------ showing the result
  var cell = R.cell, link = R.link, clearRows = R.clearRows;
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
      tx = S.transaction(chain, height, "evidence.file", payload);
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
    return S.signPackage(buf, {chain: last.chain, tx_id: last.tx_id, type: "evidence.file",
                               check: function (body) { return !!body.payload && body.payload.evidence_id === last.evidence_id; }});
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
  R.bindIdentity(S, root, function (id) {
    ident = id;
    $("go").disabled = id === null;
    if (id !== null) { R.hideError(); }
  });
  $("capture-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!ident) { return; }
    run($("url").value.trim());
  });
  $("package").addEventListener("click", downloadPackage);
})();
