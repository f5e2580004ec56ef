// Rongxin console: a rights holder registers a work (docs/console.md §6.2; the SDK's
// api/sdk_works.register_work and certify_work, done in the page). The key stays in
// signed.js's session closure; everything shown is set with textContent.
"use strict";
(function () {
  var root = document.getElementById("register");
  if (!root) { return; }
  var R = window.RxSigned;
  var S = R ? R.start(root) : null;
  if (!S) { return; }
  var C = S.C;
  var ID_RE = new RegExp("^(?:" + C.id_re + ")$");
  var WAIT_MS = 90000;
  var PLEDGE = root.getAttribute("data-pledge");
  var ident = null;
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return root.getAttribute("data-" + name) || name; };
  var canon = R.canon, utf8 = R.utf8, NodeError = R.NodeError;
  $("w-pledge").textContent = PLEDGE;

  function stage(name, state, note) {
    var li = document.querySelector('#stages li[data-stage="' + name + '"]');
    li.querySelector(".state").textContent = msg(state);
    li.className = state;
    li.querySelector(".note").textContent = note || "";
  }
  function sleep(ms) { return new Promise(function (res) { setTimeout(res, ms); }); }
  function need(ok, why) { if (!ok) { throw new Error("refusing to sign the registration the node prepared: " + why); } }

  // what api/sdk_check.check_registration checks of POST /v1/works's answer
  var FIELDS = ["attributes", "conflicts", "countersign", "fingerprints", "media_type", "pledge", "size", "sm3", "work_id"];
  function checkPrepared(prep, local, attrs, pledgeSig) {
    need(prep && typeof prep.payload === "object" && prep.payload !== null, "no payload");
    var p = prep.payload;
    need(canon(Object.keys(p).sort(R.byCodePoint)) === canon(FIELDS), "its fields are " + Object.keys(p).join(","));
    need(p.sm3 === local.sm3 && prep.sm3 === local.sm3, "it names another file");
    need(p.size === local.size, "it names another size");
    need(typeof p.work_id === "string" && ID_RE.test(p.work_id) && prep.work_id === p.work_id, "no valid work id");
    need(canon(p.attributes) === canon({authors: [], created: "", licence: "", title: attrs.title, type: attrs.type}),
         "its attributes are not the ones sent");
    need(p.pledge && p.pledge.text === PLEDGE && p.pledge.signature === pledgeSig, "its pledge is not this page's");
    need(Array.isArray(p.conflicts) && p.conflicts.every(function (c) { return c && c.work_id !== p.work_id; }),
         "its conflicts are malformed");
    canon(p);
    return p;
  }

  function committed(txId, deadline) {
    return S.json("GET", "/v1/txs/" + encodeURIComponent(txId), undefined, false).then(function (rec) {
      if (rec.status === "committed") { return rec; }
      if (Date.now() > deadline) { throw new Error("transaction " + txId + " not committed in time"); }
      return sleep(400).then(function () { return committed(txId, deadline); });
    }, function (e) {
      if (e instanceof NodeError && e.status === 404 && Date.now() < deadline) {
        return sleep(400).then(function () { return committed(txId, deadline); });
      }
      throw e;
    });
  }
  function proofPackage(workId, deadline) {
    var target = "/v1/works/" + encodeURIComponent(workId) + "/proof-package";
    return S.call("GET", target, undefined, true).catch(function (e) {
      if (e instanceof NodeError && e.status === 409 && Date.now() < deadline) {
        return sleep(700).then(function () { return proofPackage(workId, deadline); });
      }
      throw e;
    });
  }

  function run(file, attrs) {
    var chain, height, local, pledgeSig, p, tx, rec;
    ["prepare", "sign", "confirm", "certificate"].forEach(function (s) { stage(s, "waiting"); });
    R.hideError();
    $("result").hidden = true;
    $("go").disabled = true;
    if (file.size > C.max_upload) { R.showError(root, new Error("the file is over " + C.max_upload + " bytes")); $("go").disabled = false; return; }
    stage("prepare", "running");
    return Promise.all([S.json("GET", "/v1/status", undefined, false), file.arrayBuffer()]).then(function (got) {
      chain = String(got[0].chain);
      height = Number(got[0].height);
      var bytes = new Uint8Array(got[1]);
      local = {sm3: R.sm3hex(bytes), size: bytes.length};
      pledgeSig = S.sign(utf8(canon({chain: chain, holder: ident.account, pledge: PLEDGE, purpose: C.pledge_purpose,
                                     sm3: local.sm3})));
      var q = "attributes=" + encodeURIComponent(JSON.stringify(attrs)) + "&pledge=" + encodeURIComponent(PLEDGE) +
              "&pledge_signature=" + pledgeSig;
      return S.json("POST", "/v1/works?" + q, bytes, true);
    }).then(function (prep) {
      stage("prepare", "done", (prep.conflicts || []).length + " conflicts");
      stage("sign", "running");
      p = checkPrepared(prep, local, attrs, pledgeSig);
      tx = S.transaction(chain, height, "works.register", p);
      return S.json("POST", "/v1/txs", tx.wire, false);
    }).then(function (sub) {
      if (sub.id !== tx.id) { throw new Error("the node's answer names another transaction"); }
      stage("sign", "done", tx.id.slice(0, 16) + "\u2026");
      stage("confirm", "running");
      return committed(tx.id, Date.now() + WAIT_MS);
    }).then(function (r) {
      rec = r;
      if (!rec.receipt || rec.receipt.code !== 0) {
        throw new Error("works.register refused on chain: " + (rec.receipt ? rec.receipt.info : "no receipt"));
      }
      stage("confirm", "done", "block " + rec.height);
      showResult(p, rec, tx.id);
      stage("certificate", "running");
      return S.json("GET", "/v1/works/" + encodeURIComponent(p.work_id), undefined, false);
    }).then(function () {
      return proofPackage(p.work_id, Date.now() + WAIT_MS);
    }).then(function (r) { return r.arrayBuffer(); }).then(function (ab) {
      var zip = S.signPackage(new Uint8Array(ab), {chain: chain, tx_id: tx.id, type: "works.register",
        check: function (body) { return !!body.payload && body.payload.work_id === p.work_id; }});
      return S.call("PUT", "/v1/works/" + encodeURIComponent(p.work_id) + "/certificate", zip, true);
    }).then(function () {
      stage("certificate", "done");
      var a = $("r-cert");
      a.href = "/v1/works/" + encodeURIComponent(p.work_id) + "/certificate";
      a.hidden = false;
    }).catch(function (e) {
      ["prepare", "sign", "confirm", "certificate"].forEach(function (x) {
        var li = document.querySelector('#stages li[data-stage="' + x + '"]');
        if (li.className === "running") { stage(x, "failed", e.message); }
      });
      R.showError(root, e);
    }).then(function () { $("go").disabled = ident === null; });
  }
  function showResult(p, rec, txId) {
    $("r-work").href = "/works/" + encodeURIComponent(p.work_id);
    $("r-work").firstChild.textContent = p.work_id;
    $("r-tx").href = "/txs/" + encodeURIComponent(txId);
    $("r-tx").firstChild.textContent = txId;
    $("r-height").href = "/blocks/" + encodeURIComponent(rec.height);
    $("r-height").textContent = String(rec.height);
    var c = $("r-conflicts");
    c.textContent = p.conflicts.length ? "" : "–";
    p.conflicts.forEach(function (x, i) {
      if (i) { c.appendChild(document.createTextNode(", ")); }
      c.appendChild(R.link("/works/" + encodeURIComponent(x.work_id), String(x.work_id) + " (" + x.method + ")"));
    });
    $("result").hidden = false;
  }

  R.bindIdentity(S, root, function (id) {
    ident = null;
    $("action").hidden = true;
    $("no-right").hidden = true;
    if (id === null) { return; }
    R.hideError();
    S.json("GET", "/v1/identity", undefined, true).then(function (who) {
      ident = id;
      var holder = who.business === "holder";
      $("action").hidden = !holder;
      $("no-right").hidden = holder;
      $("go").disabled = !holder;
    }).catch(function (e) { R.showError(root, e); });
  });
  $("register-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = $("w-file").files[0];
    if (!ident || !f) { return; }
    run(f, {title: $("w-title").value, type: $("w-type").value});
  });
})();
