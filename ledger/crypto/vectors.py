"""Known-answer vectors from the national standards, with where each comes from.

Used by ``selftest`` at run time and by the test suite. Values are hex strings exactly as
printed in the standards.
"""

from __future__ import annotations

from dataclasses import dataclass

# GB/T 32905-2016 (SM3), Appendix A: examples 1 and 2
SM3_VECTORS: list[tuple[str, bytes, str]] = [  # (source, message, digest)
    ("GB/T 32905-2016 A.1", b"abc",
     "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    ("GB/T 32905-2016 A.2", b"abcd" * 16,
     "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]

# GB/T 32907-2016 (SM4), Appendix A: one block, and the same block encrypted 1,000,000 times
SM4_KEY = "0123456789abcdeffedcba9876543210"
SM4_PLAINTEXT = "0123456789abcdeffedcba9876543210"
SM4_CIPHERTEXT = "681edf34d206965e86b3e94f536e4246"
SM4_CIPHERTEXT_1M = "595298c7c6fd271f0402f804c33d3f66"

# GM/T 0003.5-2012 / GB/T 32918.5-2017 Appendix A: worked examples on the recommended
# curve sm2p256v1 (signature with ID "1234567812345678" and encryption of
# "encryption standard", both with the fixed random k below)
@dataclass(frozen=True)
class SM2SignVector:
    source: str
    d: str
    px: str
    py: str
    signer_id: bytes
    message: bytes
    za: str
    e: str
    k: str
    r: str
    s: str


@dataclass(frozen=True)
class SM2EncryptVector:
    source: str
    d: str
    message: bytes
    k: str
    c1x: str
    c1y: str
    c3: str
    c2: str

    def c1c3c2(self) -> bytes:
        """The example ciphertext in the raw ``04 || C1 || C3 || C2`` layout."""
        return bytes.fromhex("04" + self.c1x + self.c1y + self.c3 + self.c2)


SM2_SIGN = SM2SignVector(
    source="GB/T 32918.5-2017 Appendix A (GM/T 0003.5-2012)",
    d="3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8",
    px="09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020",
    py="CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13",
    signer_id=b"1234567812345678",
    message=b"message digest",
    za="B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3",
    e="F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640",
    k="59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21",
    r="F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3",
    s="B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
)
SM2_ENCRYPT = SM2EncryptVector(
    source="GB/T 32918.5-2017 Appendix A (GM/T 0003.5-2012)",
    d=SM2_SIGN.d,
    message=b"encryption standard",
    k=SM2_SIGN.k,
    c1x="04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73",
    c1y="E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0",
    c3="59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766",
    c2="21886CA989CA9C7D58087307CA93092D651EFA",
)


# GB/T 32918.5-2017 section 4 (GM/T 0003.5-2012): the recommended curve sm2p256v1,
# y^2 = x^3 + a x + b over F_p, base point G = (gx, gy) of prime order n, cofactor 1
@dataclass(frozen=True)
class SM2Curve:
    source: str
    p: str
    a: str
    b: str
    n: str
    gx: str
    gy: str
    h: int


SM2_CURVE = SM2Curve(
    source="GB/T 32918.5-2017 section 4 (GM/T 0003.5-2012)",
    p="FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF",
    a="FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    b="28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    n="FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123",
    gx="32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7",
    gy="BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0",
    h=1,
)

# Not from a standard: the second Pedersen generator H = hash_to_point("rongxin/pedersen/H/v1")
# (docs/crypto.md, "Hash to point and the second generator H"), compressed SEC1
PEDERSEN_H = "028c13d006745f2ef655d1c303ab948aa220eac5d8066fb63669bc04946da86c81"
