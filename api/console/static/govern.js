// Rongxin console: a supervisor votes on governance proposals (docs/console.md §6.2,
// docs/governance.md §4.2). The page lists, per open proposal, the keys that may vote on it
// (data-voters: their public keys, hex, space-separated); the buttons show only on the rows where the loaded key is
// one of them. A vote is a gov.vote transaction signed here and submitted to POST /v1/txs; its
// receipt is shown. The key stays in signed.js's session closure.
"use strict";
(function () {
  var root = document.getElementById("govern");
  if (!root) { return; }
  var R = window.RxSigned;
  var S = R ? R.start(root) : null;
  if (!S) { return; }
  var WAIT_MS = 60000;
  var ident = null;
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return root.getAttribute("data-" + name) || name; };
  var rows = Array.from(document.querySelectorAll("tr[data-proposal]"));

  function keysOf(row, attr) {          // the keys (hex points) listed in a row's attribute
    return (row.getAttribute(attr) || "").split(" ").filter(Boolean);
  }
  function refresh() {
    var any = false;
    rows.forEach(function (row) {
      var buttons = row.querySelector(".buttons"), note = row.querySelector(".note");
      var may = ident !== null && row.getAttribute("data-votable") === "yes" && keysOf(row, "data-voters").indexOf(ident.pub) >= 0;
      buttons.hidden = !may;
      if (ident !== null && keysOf(row, "data-voted").indexOf(ident.pub) >= 0) { note.textContent = msg("already"); }
      else if (!row.hasAttribute("data-done")) { note.textContent = ""; }
      any = any || may;
    });
    $("no-right").hidden = ident === null || any;
  }
  function sleep(ms) { return new Promise(function (res) { setTimeout(res, ms); }); }
  function committed(txId, deadline) {
    return S.json("GET", "/v1/txs/" + encodeURIComponent(txId), undefined, false).then(function (rec) {
      if (rec.status === "committed") { return rec; }
      if (Date.now() > deadline) { throw new Error("transaction " + txId + " not committed in time"); }
      return sleep(400).then(function () { return committed(txId, deadline); });
    });
  }
  function vote(row, approve) {
    var note = row.querySelector(".note"), tx;
    R.hideError();
    row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    note.textContent = msg("voting") + "\u2026";
    S.json("GET", "/v1/status", undefined, false).then(function (s) {
      tx = S.transaction(String(s.chain), Number(s.height), "gov.vote",
                         {approve: approve, proposal: row.getAttribute("data-proposal")});
      return S.json("POST", "/v1/txs", tx.wire, false);
    }).then(function (sub) {
      if (sub.id !== tx.id) { throw new Error("the node's answer names another transaction"); }
      return committed(tx.id, Date.now() + WAIT_MS);
    }).then(function (rec) {
      if (!rec.receipt || rec.receipt.code !== 0) {
        throw new Error("gov.vote refused on chain: " + (rec.receipt ? rec.receipt.info : "no receipt"));
      }
      row.setAttribute("data-done", "yes");
      row.querySelector(".buttons").hidden = true;
      note.textContent = msg("voted") + " (" + (approve ? "+" : "-") + ", block " + rec.height + ")";
      note.appendChild(document.createTextNode(" "));
      note.appendChild(R.link("/txs/" + encodeURIComponent(tx.id), tx.id.slice(0, 12) + "\u2026"));
    }).catch(function (e) {
      note.textContent = "";
      R.showError(root, e);
    }).then(function () {
      row.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    });
  }

  rows.forEach(function (row) {
    row.querySelector(".approve").addEventListener("click", function () { if (ident) { vote(row, true); } });
    row.querySelector(".reject").addEventListener("click", function () { if (ident) { vote(row, false); } });
  });
  R.bindIdentity(S, root, function (id) {
    ident = id;
    if (id !== null) { R.hideError(); }
    refresh();
  });
})();
