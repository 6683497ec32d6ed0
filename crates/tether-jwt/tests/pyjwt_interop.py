"""Independent side of the PyJWT interop test (the library Google's Python samples used).

verify ALG PUBLIC_PEM TOKEN AUD  -> prints the claims as JSON
mint   ALG PRIVATE_PEM AUD IAT   -> prints a token valid for 20 minutes
"""
import json
import sys

import jwt  # PyJWT

mode, alg, key_path = sys.argv[1:4]
key = open(key_path, "rb").read()
if mode == "verify":
    token, aud = sys.argv[4:6]
    claims = jwt.decode(token, key, algorithms=[alg], audience=aud, options={"verify_exp": False, "verify_iat": False})
    print(json.dumps(claims, sort_keys=True))
else:
    aud, iat = sys.argv[4], int(sys.argv[5])
    # The claims exactly as Google's cloudiot_mqtt_example.py built them.
    print(jwt.encode({"iat": iat, "exp": iat + 1200, "aud": aud}, key, algorithm=alg))
