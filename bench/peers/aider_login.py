#!/usr/bin/env python3
"""P4 peer: the OpenRouter OAuth PKCE flow as aider does it (aider/onboarding.py,
start_openrouter_oauth_flow), standard library only.

Same steps as aider: find a free port from 8484 up, make a PKCE verifier and S256 challenge,
serve /callback/aider with socketserver.TCPServer + http.server in a thread (handle_request in
a loop with a 0.1 s sleep), print the authorization URL, wait for the code, answer the browser
"Success!" at once, then exchange the code with a POST to /api/v1/auth/keys (urllib instead of
aider's `requests`, which is not in the standard library) and append the key to a key file.

Differences from aider, for the harness only: the base URL and key file come from the command
line, the browser is not opened, and two JSON lines go to stdout (the URL, then "signed_in"
once the key is on disk) so the harness can time them the same way it times our CLI.
"""
import base64
import hashlib
import http.server
import json
import secrets
import socketserver
import sys
import threading
import time
import urllib.request
from urllib.parse import parse_qs, urlencode, urlparse


def find_available_port(start_port=8484, end_port=8584):
    for port in range(start_port, end_port + 1):
        try:
            with socketserver.TCPServer(("localhost", port), None):
                return port
        except OSError:
            continue
    return None


def generate_pkce_codes():
    code_verifier = secrets.token_urlsafe(64)
    hasher = hashlib.sha256()
    hasher.update(code_verifier.encode("utf-8"))
    code_challenge = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode("utf-8")
    return code_verifier, code_challenge


def exchange_code_for_key(base_url, code, code_verifier):
    body = json.dumps(
        {"code": code, "code_verifier": code_verifier, "code_challenge_method": "S256"}
    ).encode("utf-8")
    req = urllib.request.Request(
        base_url.rstrip("/") + "/api/v1/auth/keys",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        data = json.loads(resp.read())
    return data.get("key")


def main():
    base_url = sys.argv[sys.argv.index("--base-url") + 1]
    key_file = sys.argv[sys.argv.index("--store") + 1]
    port = find_available_port()
    if not port:
        print(json.dumps({"event": "failed", "error": "no free port"}), flush=True)
        return 1
    callback_url = f"http://localhost:{port}/callback/aider"
    auth_code = None
    server_started = threading.Event()
    shutdown_server = threading.Event()

    class OAuthCallbackHandler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            nonlocal auth_code
            parsed_path = urlparse(self.path)
            if parsed_path.path == "/callback/aider":
                query_params = parse_qs(parsed_path.query)
                if "code" in query_params:
                    auth_code = query_params["code"][0]
                    self.send_response(200)
                    self.send_header("Content-type", "text/html")
                    self.end_headers()
                    self.wfile.write(
                        b"<html><body><h1>Success!</h1>"
                        b"<p>Aider has received the authentication code. "
                        b"You can close this browser tab.</p></body></html>"
                    )
                    shutdown_server.set()
                else:
                    self.send_response(400)
                    self.send_header("Content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"Missing 'code' parameter in callback URL.")
            else:
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b"Not Found")

        def log_message(self, format, *args):
            pass

    def run_server():
        with socketserver.TCPServer(("localhost", port), OAuthCallbackHandler) as httpd:
            server_started.set()
            while not shutdown_server.is_set():
                httpd.handle_request()
                time.sleep(0.1)

    code_verifier, code_challenge = generate_pkce_codes()
    auth_params = {
        "callback_url": callback_url,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    auth_url = f"{base_url.rstrip('/')}/auth?{urlencode(auth_params)}"
    server_thread = threading.Thread(target=run_server, daemon=True)
    server_thread.start()
    if not server_started.wait(timeout=5):
        return 1
    print(
        json.dumps({"event": "authorization_url", "url": auth_url, "callback_url": callback_url}),
        flush=True,
    )
    shutdown_server.wait(timeout=5 * 60)
    if not auth_code:
        return 1
    api_key = exchange_code_for_key(base_url, auth_code, code_verifier)
    if not api_key:
        return 1
    with open(key_file, "a", encoding="utf-8") as f:
        f.write(f'OPENROUTER_API_KEY="{api_key}"\n')
    print(json.dumps({"event": "signed_in"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
