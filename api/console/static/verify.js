// Rongxin console: a court (or the regulator) verifies an evidence package (docs/console.md
// §6.2). The package goes to POST /v1/evidence/verify (signed), where the node runs the offline
// court verifier (forensics.verify) against its consortium root and keeps nothing; the report
// is shown check by check. The key stays in signed.js's session closure; everything shown is
// set with textContent.
"use strict";
(function () {
  var root = document.getElementById("verify");
  if (!root) { return; }
  var R = window.RxSigned;
  var S = R ? R.start(root) : null;
  if (!S) { return; }
  var C = S.C;
  var ident = null;
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return root.getAttribute("data-" + name) || name; };
  var zh = document.documentElement.lang === "zh-CN";

  function show(rep) {
    $("verdict").textContent = rep.ok ? msg("holds") : msg("fails") + ": " + rep.failed.join(", ");
    $("verdict").className = rep.ok ? "ok" : "bad";
    $("r-root").textContent = String(rep.root.name) + " · SM3 " + String(rep.root.fingerprint);
    var f = rep.filer || {};
    $("r-filer").textContent = f.name ? String(f.name) + " (" + String(f.org) + ", " + String(f.role) + "), " +
      String(f.signed_at) : "–";
    var t = $("r-checks");
    R.clearRows(t);
    Object.keys(rep.checks).forEach(function (k) {
      var c = rep.checks[k];
      var tr = t.insertRow();
      tr.setAttribute("data-check", k);
      tr.className = c.ok ? "ok" : "bad";
      R.cell(tr, k);
      R.cell(tr, c.ok ? msg("pass") : msg("fail"));
      R.cell(tr, zh ? String(c.zh) : String(c.en));
      R.cell(tr, String(c.weighed_under));
      R.cell(tr, c.ok ? "" : String(c.why));
    });
    var st = $("r-statements");
    R.clearRows(st);
    (rep.statements || []).forEach(function (s) {
      var tr = st.insertRow();
      var who = s.sender || {};
      R.cell(tr, String(s.type));
      R.cell(tr, String(who.name || "?") + " (" + String(who.org || "?") + ")");
      R.cell(tr, String(s.height));
      R.cell(tr, String(s.time));
      R.cell(tr, String(s.tx));
      R.cell(tr, (s.artefacts || []).map(function (a) { return String(a.name); }).join(", "));
    });
    $("result").hidden = false;
  }
  function run(file) {
    R.hideError();
    $("result").hidden = true;
    if (file.size > C.max_package) { R.showError(root, new Error("the package is over " + C.max_package + " bytes: verify it with rongxin evidence verify")); return; }
    $("go").disabled = true;
    $("state").textContent = msg("running") + "\u2026";
    file.arrayBuffer().then(function (ab) {
      return S.json("POST", "/v1/evidence/verify", new Uint8Array(ab), true);
    }).then(show).catch(function (e) { R.showError(root, e); }).then(function () {
      $("state").textContent = "";
      $("go").disabled = ident === null;
    });
  }

  R.bindIdentity(S, root, function (id) {
    ident = null;
    $("action").hidden = true;
    $("no-right").hidden = true;
    if (id === null) { return; }
    R.hideError();
    S.json("GET", "/v1/identity", undefined, true).then(function (who) {
      ident = id;
      var may = C.verify_roles.indexOf(who.business) >= 0;
      $("action").hidden = !may;
      $("no-right").hidden = may;
      $("go").disabled = !may;
    }).catch(function (e) { R.showError(root, e); });
  });
  $("verify-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = $("pkg").files[0];
    if (!ident || !f) { return; }
    run(f);
  });
})();
