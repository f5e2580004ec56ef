;; token.wat: a points ledger, the example contract of docs/contracts-abi.md.
;;
;; Methods (args and results are JSON; accounts are strings of 1-128 bytes without escapes):
;;   init     {"owner": account?}         once, at install: who may mint (default: the caller)
;;   mint     {"amount": n, "to": account} owner only; event Mint, keys [to]
;;   transfer {"amount": n, "to": account} from the caller; event Transfer, keys [from, to]
;;   balance  {"account": account}         -> n
;;   supply   {}                           -> n (everything minted)
;; Amounts are integers 1 .. 2^63-1. Refusals (revert): not initialised, already initialised,
;; only the owner may mint, insufficient balance, balance/supply overflow, a bad argument.
;;
;; State (contract keys; the host puts them under c/s/<contract>/):
;;   owner       the owner's account
;;   supply      decimal ASCII
;;   b/<account> decimal ASCII balance (absent: 0)
;;
;; Build: python -c "from ledger.contracts.wasm import example; example('token')"
;; (or any wat2wasm).
(module
  (import "env" "state_get" (func $state_get (param i32 i32) (result i32)))
  (import "env" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "env" "output_copy" (func $output_copy (param i32)))
  (import "env" "caller" (func $caller (result i32)))
  (import "env" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))

  (memory (export "memory") 2)

  ;; the bump allocator's next free byte: everything below 64 KiB is static data
  (global $heap (mut i32) (i32.const 65536))
  ;; what $arg_account found: the string's bytes (without quotes)
  (global $sp (mut i32) (i32.const 0))
  (global $sl (mut i32) (i32.const 0))
  ;; the byte builder: start and cursor
  (global $b0 (mut i32) (i32.const 0))
  (global $b (mut i32) (i32.const 0))

  (data (i32.const 16) "owner")        ;; 16 len 5
  (data (i32.const 21) "supply")       ;; 21 len 6
  (data (i32.const 27) "to")           ;; 27 len 2
  (data (i32.const 29) "amount")       ;; 29 len 6
  (data (i32.const 35) "account")      ;; 35 len 7
  (data (i32.const 42) "b/")           ;; 42 len 2
  (data (i32.const 44) "Mint")         ;; 44 len 4
  (data (i32.const 48) "Transfer")     ;; 48 len 8
  (data (i32.const 56) "not initialised")          ;; 56 len 15
  (data (i32.const 71) "already initialised")      ;; 71 len 19
  (data (i32.const 90) "only the owner may mint")  ;; 90 len 23
  (data (i32.const 113) "insufficient balance")    ;; 113 len 20
  (data (i32.const 133) "balance overflow")        ;; 133 len 16
  (data (i32.const 149) "supply overflow")         ;; 149 len 15
  (data (i32.const 164) "{\22amount\22:")          ;; 164 len 10
  (data (i32.const 174) ",\22from\22:\22")         ;; 174 len 9
  (data (i32.const 183) "\22,\22to\22:\22")        ;; 183 len 8
  (data (i32.const 191) "\22}")                    ;; 191 len 2
  (data (i32.const 193) ",\22to\22:\22")           ;; 193 len 7
  (data (i32.const 200) "[\22")                    ;; 200 len 2
  (data (i32.const 202) "\22,\22")                 ;; 202 len 3
  (data (i32.const 205) "\22]")                    ;; 205 len 2
  (data (i32.const 207) "\22")                     ;; 207 len 1
  (data (i32.const 208) "\22 must be an account (a string of 1-128 bytes, no escapes)")  ;; 208 len 58
  (data (i32.const 266) "\22 must be a positive integer below 2^63")                     ;; 266 len 39

  ;; ------------------------------------------------------------ ABI: the allocator
  ;; A bump allocator (each call runs in a fresh instance, so nothing is ever freed).
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local $top i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (if (i32.lt_u (global.get $heap) (local.get $p)) (then unreachable))
    (local.set $top (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (global.get $heap) (local.get $top))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (global.get $heap) (local.get $top)) (i32.const 65535))
                                            (i32.const 16)))
                    (i32.const -1))
          (then unreachable))))
    (local.get $p))

  ;; ------------------------------------------------------------ helpers
  (func $fail (param $msg i32) (param $len i32)
    (call $revert (local.get $msg) (local.get $len))
    unreachable)

  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $no
      (loop $l
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $no (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i32.const 0))

  ;; The position just after `"key":` of a top-level key of the JSON object at p..p+n, or -1.
  ;; Skips strings (with escapes) and nested objects and arrays.
  (func $find (param $p i32) (param $n i32) (param $k i32) (param $kl i32) (result i32)
    (local $end i32) (local $c i32) (local $depth i32) (local $instr i32) (local $esc i32) (local $keypos i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (if (local.get $instr)
          (then
            (if (local.get $esc)
              (then (local.set $esc (i32.const 0)))
              (else
                (if (i32.eq (local.get $c) (i32.const 92)) (then (local.set $esc (i32.const 1))))
                (if (i32.eq (local.get $c) (i32.const 34)) (then (local.set $instr (i32.const 0)))))))
          (else
            (if (i32.eq (local.get $c) (i32.const 34))
              (then
                (if (i32.and (i32.eq (local.get $depth) (i32.const 1)) (local.get $keypos))
                  (then
                    (if (i32.le_u (i32.add (i32.add (local.get $p) (local.get $kl)) (i32.const 3)) (local.get $end))
                      (then
                        (if (i32.and
                              (call $memeq (i32.add (local.get $p) (i32.const 1)) (local.get $k) (local.get $kl))
                              (i32.and
                                (i32.eq (i32.load8_u (i32.add (i32.add (local.get $p) (local.get $kl)) (i32.const 1)))
                                        (i32.const 34))
                                (i32.eq (i32.load8_u (i32.add (i32.add (local.get $p) (local.get $kl)) (i32.const 2)))
                                        (i32.const 58))))
                          (then (return (i32.add (i32.add (local.get $p) (local.get $kl)) (i32.const 3)))))))))
                (local.set $instr (i32.const 1))
                (local.set $keypos (i32.const 0))))
            (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
              (then
                (local.set $depth (i32.add (local.get $depth) (i32.const 1)))
                (local.set $keypos (i32.eq (local.get $c) (i32.const 123)))))
            (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
              (then (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))))
            (if (i32.eq (local.get $c) (i32.const 44))
              (then (local.set $keypos (i32.const 1))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l)))
    (i32.const -1))

  ;; The decimal integer at p (before end), 0 .. 2^63-1, or -1 (no digits, too big, not a
  ;; whole number).
  (func $parse_u63 (param $p i32) (param $end i32) (result i64)
    (local $v i64) (local $c i32) (local $digits i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
        (if (i64.gt_u (local.get $v)
                      (i64.div_u (i64.sub (i64.const 0x7fffffffffffffff) (i64.extend_i32_u (local.get $c)))
                                 (i64.const 10)))
          (then (return (i64.const -1))))
        (local.set $v (i64.add (i64.mul (local.get $v) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l)))
    (if (i32.eqz (local.get $digits)) (then (return (i64.const -1))))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (if (i32.eqz (i32.or (i32.eq (i32.load8_u (local.get $p)) (i32.const 44))
                             (i32.eq (i32.load8_u (local.get $p)) (i32.const 125))))
          (then (return (i64.const -1))))))
    (local.get $v))

  ;; the byte builder
  (func $b_start
    (global.set $b0 (call $alloc (i32.const 1024)))
    (global.set $b (global.get $b0)))
  (func $b_put (param $src i32) (param $n i32)
    (memory.copy (global.get $b) (local.get $src) (local.get $n))
    (global.set $b (i32.add (global.get $b) (local.get $n))))
  (func $b_len (result i32)
    (i32.sub (global.get $b) (global.get $b0)))
  ;; v in decimal (unsigned)
  (func $b_num (param $v i64)
    (local $end i32) (local $i i32)
    (local.set $end (i32.add (call $alloc (i32.const 24)) (i32.const 20)))
    (local.set $i (local.get $end))
    (loop $l
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i64.store8 (local.get $i) (i64.add (i64.rem_u (local.get $v) (i64.const 10)) (i64.const 48)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (call $b_put (local.get $i) (i32.sub (local.get $end) (local.get $i))))

  ;; revert with `"<key>` followed by the message at msg
  (func $bad_arg (param $k i32) (param $kl i32) (param $msg i32) (param $ml i32)
    (call $b_start)
    (call $b_put (i32.const 207) (i32.const 1))
    (call $b_put (local.get $k) (local.get $kl))
    (call $b_put (local.get $msg) (local.get $ml))
    (call $fail (global.get $b0) (call $b_len)))

  ;; the account string under key k of the args object (into $sp/$sl), or revert
  (func $arg_account (param $p i32) (param $n i32) (param $k i32) (param $kl i32)
    (local $v i32) (local $end i32) (local $q i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $v (call $find (local.get $p) (local.get $n) (local.get $k) (local.get $kl)))
    (block $bad
      (br_if $bad (i32.eq (local.get $v) (i32.const -1)))
      (br_if $bad (i32.ge_u (local.get $v) (local.get $end)))
      (br_if $bad (i32.ne (i32.load8_u (local.get $v)) (i32.const 34)))
      (local.set $q (i32.add (local.get $v) (i32.const 1)))
      (block $closed
        (loop $l
          (br_if $bad (i32.ge_u (local.get $q) (local.get $end)))
          (br_if $bad (i32.eq (i32.load8_u (local.get $q)) (i32.const 92)))
          (br_if $closed (i32.eq (i32.load8_u (local.get $q)) (i32.const 34)))
          (local.set $q (i32.add (local.get $q) (i32.const 1)))
          (br $l)))
      (global.set $sp (i32.add (local.get $v) (i32.const 1)))
      (global.set $sl (i32.sub (local.get $q) (global.get $sp)))
      (br_if $bad (i32.eqz (global.get $sl)))
      (br_if $bad (i32.gt_u (global.get $sl) (i32.const 128)))
      (return))
    (call $bad_arg (local.get $k) (local.get $kl) (i32.const 208) (i32.const 58)))

  ;; the "amount" argument, 1 .. 2^63-1, or revert
  (func $arg_amount (param $p i32) (param $n i32) (result i64)
    (local $v i32) (local $amt i64)
    (local.set $v (call $find (local.get $p) (local.get $n) (i32.const 29) (i32.const 6)))
    (local.set $amt (i64.const -1))
    (if (i32.ne (local.get $v) (i32.const -1))
      (then (local.set $amt (call $parse_u63 (local.get $v) (i32.add (local.get $p) (local.get $n))))))
    (if (i64.le_s (local.get $amt) (i64.const 0))
      (then (call $bad_arg (i32.const 29) (i32.const 6) (i32.const 266) (i32.const 39))))
    (local.get $amt))

  ;; a stored decimal (0 when the key is absent)
  (func $get_num (param $kp i32) (param $kl i32) (result i64)
    (local $n i32) (local $buf i32)
    (local.set $n (call $state_get (local.get $kp) (local.get $kl)))
    (if (i32.eq (local.get $n) (i32.const -1)) (then (return (i64.const 0))))
    (local.set $buf (call $alloc (local.get $n)))
    (call $output_copy (local.get $buf))
    (call $parse_u63 (local.get $buf) (i32.add (local.get $buf) (local.get $n))))

  (func $put_num (param $kp i32) (param $kl i32) (param $v i64)
    (call $b_start)
    (call $b_num (local.get $v))
    (call $state_set (local.get $kp) (local.get $kl) (global.get $b0) (call $b_len)))

  ;; builds the key "b/<account>" (in the builder: $b0, $b_len)
  (func $bal_key (param $ap i32) (param $al i32)
    (call $b_start)
    (call $b_put (i32.const 42) (i32.const 2))
    (call $b_put (local.get $ap) (local.get $al)))

  ;; ------------------------------------------------------------ methods
  (func (export "init") (param $p i32) (param $n i32) (result i32)
    (if (i32.eq (call $find (local.get $p) (local.get $n) (i32.const 16) (i32.const 5)) (i32.const -1))
      (then
        ;; no "owner": the caller (the account that runs contract.init)
        (global.set $sl (call $caller))
        (global.set $sp (call $alloc (global.get $sl)))
        (call $output_copy (global.get $sp)))
      (else (call $arg_account (local.get $p) (local.get $n) (i32.const 16) (i32.const 5))))
    (if (i32.ne (call $state_get (i32.const 16) (i32.const 5)) (i32.const -1))
      (then (call $fail (i32.const 71) (i32.const 19))))
    (call $state_set (i32.const 16) (i32.const 5) (global.get $sp) (global.get $sl))
    (i32.const 0))

  (func (export "mint") (param $p i32) (param $n i32) (result i32)
    (local $ol i32) (local $op i32) (local $cl i32) (local $cp i32) (local $tp i32) (local $tl i32)
    (local $amt i64) (local $s i64) (local $kp i32) (local $kl i32)
    ;; only the owner
    (local.set $ol (call $state_get (i32.const 16) (i32.const 5)))
    (if (i32.eq (local.get $ol) (i32.const -1)) (then (call $fail (i32.const 56) (i32.const 15))))
    (local.set $op (call $alloc (local.get $ol)))
    (call $output_copy (local.get $op))
    (local.set $cl (call $caller))
    (local.set $cp (call $alloc (local.get $cl)))
    (call $output_copy (local.get $cp))
    (if (i32.or (i32.ne (local.get $ol) (local.get $cl))
                (i32.eqz (call $memeq (local.get $op) (local.get $cp) (local.get $cl))))
      (then (call $fail (i32.const 90) (i32.const 23))))
    (call $arg_account (local.get $p) (local.get $n) (i32.const 27) (i32.const 2))
    (local.set $tp (global.get $sp))
    (local.set $tl (global.get $sl))
    (local.set $amt (call $arg_amount (local.get $p) (local.get $n)))
    ;; supply += amount (a balance never exceeds the supply, so it cannot overflow either)
    (local.set $s (i64.add (call $get_num (i32.const 21) (i32.const 6)) (local.get $amt)))
    (if (i64.lt_s (local.get $s) (i64.const 0)) (then (call $fail (i32.const 149) (i32.const 15))))
    (call $put_num (i32.const 21) (i32.const 6) (local.get $s))
    (call $bal_key (local.get $tp) (local.get $tl))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (call $put_num (local.get $kp) (local.get $kl)
                   (i64.add (call $get_num (local.get $kp) (local.get $kl)) (local.get $amt)))
    ;; event Mint: keys ["<to>"], data {"amount":N,"to":"<to>"}
    (call $b_start)
    (call $b_put (i32.const 200) (i32.const 2))
    (call $b_put (local.get $tp) (local.get $tl))
    (call $b_put (i32.const 205) (i32.const 2))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (call $b_start)
    (call $b_put (i32.const 164) (i32.const 10))
    (call $b_num (local.get $amt))
    (call $b_put (i32.const 193) (i32.const 7))
    (call $b_put (local.get $tp) (local.get $tl))
    (call $b_put (i32.const 191) (i32.const 2))
    (call $emit (i32.const 44) (i32.const 4) (local.get $kp) (local.get $kl) (global.get $b0) (call $b_len))
    (i32.const 0))

  (func (export "transfer") (param $p i32) (param $n i32) (result i32)
    (local $fp i32) (local $fl i32) (local $tp i32) (local $tl i32) (local $amt i64) (local $fb i64)
    (local $tb i64) (local $kp i32) (local $kl i32)
    ;; from: the caller
    (local.set $fl (call $caller))
    (local.set $fp (call $alloc (local.get $fl)))
    (call $output_copy (local.get $fp))
    (call $arg_account (local.get $p) (local.get $n) (i32.const 27) (i32.const 2))
    (local.set $tp (global.get $sp))
    (local.set $tl (global.get $sl))
    (local.set $amt (call $arg_amount (local.get $p) (local.get $n)))
    ;; debit
    (call $bal_key (local.get $fp) (local.get $fl))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (local.set $fb (call $get_num (local.get $kp) (local.get $kl)))
    (if (i64.lt_u (local.get $fb) (local.get $amt)) (then (call $fail (i32.const 113) (i32.const 20))))
    (call $put_num (local.get $kp) (local.get $kl) (i64.sub (local.get $fb) (local.get $amt)))
    ;; credit (read after the debit: a transfer to oneself changes nothing)
    (call $bal_key (local.get $tp) (local.get $tl))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (local.set $tb (i64.add (call $get_num (local.get $kp) (local.get $kl)) (local.get $amt)))
    (if (i64.lt_s (local.get $tb) (i64.const 0)) (then (call $fail (i32.const 133) (i32.const 16))))
    (call $put_num (local.get $kp) (local.get $kl) (local.get $tb))
    ;; event Transfer: keys ["<from>","<to>"], data {"amount":N,"from":"<from>","to":"<to>"}
    (call $b_start)
    (call $b_put (i32.const 200) (i32.const 2))
    (call $b_put (local.get $fp) (local.get $fl))
    (call $b_put (i32.const 202) (i32.const 3))
    (call $b_put (local.get $tp) (local.get $tl))
    (call $b_put (i32.const 205) (i32.const 2))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (call $b_start)
    (call $b_put (i32.const 164) (i32.const 10))
    (call $b_num (local.get $amt))
    (call $b_put (i32.const 174) (i32.const 9))
    (call $b_put (local.get $fp) (local.get $fl))
    (call $b_put (i32.const 183) (i32.const 8))
    (call $b_put (local.get $tp) (local.get $tl))
    (call $b_put (i32.const 191) (i32.const 2))
    (call $emit (i32.const 48) (i32.const 8) (local.get $kp) (local.get $kl) (global.get $b0) (call $b_len))
    (i32.const 0))

  (func (export "balance") (param $p i32) (param $n i32) (result i32)
    (local $v i64)
    (call $arg_account (local.get $p) (local.get $n) (i32.const 35) (i32.const 7))
    (call $bal_key (global.get $sp) (global.get $sl))
    (local.set $v (call $get_num (global.get $b0) (call $b_len)))
    (call $b_start)
    (call $b_num (local.get $v))
    (call $return_data (global.get $b0) (call $b_len))
    (i32.const 0))

  (func (export "supply") (param $p i32) (param $n i32) (result i32)
    (local $v i64)
    (local.set $v (call $get_num (i32.const 21) (i32.const 6)))
    (call $b_start)
    (call $b_num (local.get $v))
    (call $return_data (global.get $b0) (call $b_len))
    (i32.const 0))
)
