"""Keys and tokens for the authenticated reads of benches/run.sh (run with target/venv's
python: PyJWT + cryptography). Writes, into the directory given as the first argument:
  jwks.json      a JWKS with the HS256 secret (kty oct) and a fresh RSA public key
  hs256.token    one HS256 token, role bench_user
  rs256.token    one RS256 token, role bench_user
  rs256.tokens   5,000 distinct RS256 tokens (more than a worker's 1,000-entry cache holds)
"""
import base64
import json
import sys
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

SECRET = b"bench-secret-bench-secret-bench-secret!!"
DISTINCT = 5000

out = Path(sys.argv[1])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
oct_key = {"kty": "oct", "k": base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode()}
rsa_key = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
(out / "jwks.json").write_text(json.dumps({"keys": [oct_key, rsa_key]}))
claims = {"role": "bench_user", "sub": "bench"}
(out / "hs256.token").write_text(jwt.encode(claims, SECRET, algorithm="HS256"))
(out / "rs256.token").write_text(jwt.encode(claims, key, algorithm="RS256"))
(out / "rs256.tokens").write_text("\n".join(
    jwt.encode({**claims, "n": i}, key, algorithm="RS256") for i in range(DISTINCT)) + "\n")
