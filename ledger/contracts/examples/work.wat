;; work.wat: the contract of the parallel-execution benchmark (bench/).
;;
;; Methods:
;;   work {"amount": n, "from": account, "rounds": r?, "to": account}
;;        r rounds of a 64-bit mixing function (default 600000: about 1 ms of CPU on the
;;        reference machine, with the call's own overhead), then moves n points from `from`
;;        to `to` (reverts "insufficient balance" or "balance overflow"); returns the mix (a
;;        number). Calls touching the same accounts conflict through the balance keys;
;;        others are independent. Fuel: 21 per round + about 0.8 million.
;;   seed {"account": account, "balance": n}   sets a balance (no access control: a benchmark)
;;   noop {}                                   nothing (measures the per-call overhead)
;; A balance that was never set counts as 1000000000.
;;
;; State (contract keys): b/<account> decimal ASCII.
(module
  (import "env" "state_get" (func $state_get (param i32 i32) (result i32)))
  (import "env" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "env" "output_copy" (func $output_copy (param i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))

  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $sp (mut i32) (i32.const 0))
  (global $sl (mut i32) (i32.const 0))
  (global $b0 (mut i32) (i32.const 0))
  (global $b (mut i32) (i32.const 0))

  (data (i32.const 16) "from")        ;; 16 len 4
  (data (i32.const 20) "to")          ;; 20 len 2
  (data (i32.const 22) "amount")      ;; 22 len 6
  (data (i32.const 28) "rounds")      ;; 28 len 6
  (data (i32.const 34) "account")     ;; 34 len 7
  (data (i32.const 41) "balance")     ;; 41 len 7
  (data (i32.const 48) "b/")          ;; 48 len 2
  (data (i32.const 50) "insufficient balance")  ;; 50 len 20
  (data (i32.const 70) "\22")         ;; 70 len 1
  (data (i32.const 71) "\22 must be an account (a string of 1-128 bytes, no escapes)")  ;; 71 len 58
  (data (i32.const 129) "\22 must be an integer 0 .. 2^63-1")                          ;; 129 len 32
  (data (i32.const 161) "balance overflow")  ;; 161 len 16

  ;; ------------------------------------------------------------ ABI: the allocator
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

  ;; ------------------------------------------------------------ helpers (as in token.wat)
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

  (func $b_start
    (global.set $b0 (call $alloc (i32.const 1024)))
    (global.set $b (global.get $b0)))
  (func $b_put (param $src i32) (param $n i32)
    (memory.copy (global.get $b) (local.get $src) (local.get $n))
    (global.set $b (i32.add (global.get $b) (local.get $n))))
  (func $b_len (result i32)
    (i32.sub (global.get $b) (global.get $b0)))
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

  (func $bad_arg (param $k i32) (param $kl i32) (param $msg i32) (param $ml i32)
    (call $b_start)
    (call $b_put (i32.const 70) (i32.const 1))
    (call $b_put (local.get $k) (local.get $kl))
    (call $b_put (local.get $msg) (local.get $ml))
    (call $fail (global.get $b0) (call $b_len)))

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
    (call $bad_arg (local.get $k) (local.get $kl) (i32.const 71) (i32.const 58)))

  ;; the integer under key k (0 .. 2^63-1); `default` when absent (a negative default: required)
  (func $arg_int (param $p i32) (param $n i32) (param $k i32) (param $kl i32) (param $default i64) (result i64)
    (local $v i32) (local $x i64)
    (local.set $v (call $find (local.get $p) (local.get $n) (local.get $k) (local.get $kl)))
    (if (i32.eq (local.get $v) (i32.const -1))
      (then
        (if (i64.ge_s (local.get $default) (i64.const 0)) (then (return (local.get $default))))
        (local.set $x (i64.const -1)))
      (else (local.set $x (call $parse_u63 (local.get $v) (i32.add (local.get $p) (local.get $n))))))
    (if (i64.lt_s (local.get $x) (i64.const 0))
      (then (call $bad_arg (local.get $k) (local.get $kl) (i32.const 129) (i32.const 32))))
    (local.get $x))

  ;; balance under the key at kp/kl (1000000000 when never set)
  (func $get_bal (param $kp i32) (param $kl i32) (result i64)
    (local $n i32) (local $buf i32)
    (local.set $n (call $state_get (local.get $kp) (local.get $kl)))
    (if (i32.eq (local.get $n) (i32.const -1)) (then (return (i64.const 1000000000))))
    (local.set $buf (call $alloc (local.get $n)))
    (call $output_copy (local.get $buf))
    (call $parse_u63 (local.get $buf) (i32.add (local.get $buf) (local.get $n))))

  (func $put_num (param $kp i32) (param $kl i32) (param $v i64)
    (call $b_start)
    (call $b_num (local.get $v))
    (call $state_set (local.get $kp) (local.get $kl) (global.get $b0) (call $b_len)))

  (func $bal_key (param $ap i32) (param $al i32)
    (call $b_start)
    (call $b_put (i32.const 48) (i32.const 2))
    (call $b_put (local.get $ap) (local.get $al)))

  ;; ------------------------------------------------------------ methods
  (func (export "work") (param $p i32) (param $n i32) (result i32)
    (local $fp i32) (local $fl i32) (local $tp i32) (local $tl i32) (local $amt i64) (local $rounds i64)
    (local $x i64) (local $i i64) (local $fb i64) (local $tb i64) (local $kp i32) (local $kl i32)
    (call $arg_account (local.get $p) (local.get $n) (i32.const 16) (i32.const 4))
    (local.set $fp (global.get $sp))
    (local.set $fl (global.get $sl))
    (call $arg_account (local.get $p) (local.get $n) (i32.const 20) (i32.const 2))
    (local.set $tp (global.get $sp))
    (local.set $tl (global.get $sl))
    (local.set $amt (call $arg_int (local.get $p) (local.get $n) (i32.const 22) (i32.const 6) (i64.const -1)))
    (local.set $rounds (call $arg_int (local.get $p) (local.get $n) (i32.const 28) (i32.const 6) (i64.const 600000)))
    ;; the work: an LCG step and an xorshift per round, seeded with the amount
    (local.set $x (i64.xor (local.get $amt) (i64.const 0x9e3779b97f4a7c15)))
    (block $done
      (loop $l
        (br_if $done (i64.ge_u (local.get $i) (local.get $rounds)))
        (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                               (i64.const 1442695040888963407)))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 29))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $l)))
    ;; debit `from`
    (call $bal_key (local.get $fp) (local.get $fl))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (local.set $fb (call $get_bal (local.get $kp) (local.get $kl)))
    (if (i64.lt_u (local.get $fb) (local.get $amt)) (then (call $fail (i32.const 50) (i32.const 20))))
    (call $put_num (local.get $kp) (local.get $kl) (i64.sub (local.get $fb) (local.get $amt)))
    ;; credit `to` (read after the debit)
    (call $bal_key (local.get $tp) (local.get $tl))
    (local.set $kp (global.get $b0))
    (local.set $kl (call $b_len))
    (local.set $tb (i64.add (call $get_bal (local.get $kp) (local.get $kl)) (local.get $amt)))
    (if (i64.lt_s (local.get $tb) (i64.const 0)) (then (call $fail (i32.const 161) (i32.const 16))))
    (call $put_num (local.get $kp) (local.get $kl) (local.get $tb))
    ;; result: the mix
    (call $b_start)
    (call $b_num (local.get $x))
    (call $return_data (global.get $b0) (call $b_len))
    (i32.const 0))

  (func (export "seed") (param $p i32) (param $n i32) (result i32)
    (local $ap i32) (local $al i32) (local $v i64)
    (call $arg_account (local.get $p) (local.get $n) (i32.const 34) (i32.const 7))
    (local.set $ap (global.get $sp))
    (local.set $al (global.get $sl))
    (local.set $v (call $arg_int (local.get $p) (local.get $n) (i32.const 41) (i32.const 7) (i64.const -1)))
    (call $bal_key (local.get $ap) (local.get $al))
    (call $put_num (global.get $b0) (call $b_len) (local.get $v))
    (i32.const 0))

  (func (export "noop") (param $p i32) (param $n i32) (result i32)
    (i32.const 0))
)
