"""The shop: real HTML pages instrumented with the collector's rum.js, and a small JSON API.

Journeys it offers: log in through the SSO (``/login`` → SSO ``/authorize`` → ``/login/callback``
→ ``/account``), search and view a product, add to cart and check out (the checkout page pays
through the payment service from the browser, then shows the confirmation).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from journeylens.demo_shop.common import service_app, sign, verify
from journeylens.demo_shop.faults import FaultRegistry
from journeylens.demo_shop.settings import DemoShopSettings, Service

SESSION_COOKIE = "jl_demo_session"
CART_COOKIE = "jl_demo_cart"
MAX_CARTS = 10_000
CURRENCY = "EUR"


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price: float
    description: str

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "price": self.price,
            "currency": CURRENCY,
            "url": f"/product/{self.id}",
        }


PRODUCTS = {
    p.id: p
    for p in (
        Product("p-100", "Desk lamp", 85.0, "A warm desk lamp with a brass arm."),
        Product("p-101", "Floor lamp", 149.0, "A tall reading lamp for the living room."),
        Product("p-102", "Lamp shade", 25.0, "Linen shade for every lamp in the shop."),
        Product("p-200", "Armchair", 420.0, "A deep armchair in green velvet."),
        Product("p-201", "Side table", 95.0, "Oak side table, fits beside the armchair."),
    )
}


@dataclass
class Cart:
    id: str
    items: dict[str, int] = field(default_factory=dict)
    ordered: bool = False

    @property
    def total(self) -> float:
        return round(sum(PRODUCTS[p].price * q for p, q in self.items.items()), 2)

    def as_json(self) -> dict[str, object]:
        return {
            "cart_id": self.id,
            "items": [
                {"product_id": p, "name": PRODUCTS[p].name, "quantity": q}
                for p, q in self.items.items()
            ],
            "total": self.total,
            "currency": CURRENCY,
        }


class CartStore:
    """Carts in memory, oldest dropped beyond `MAX_CARTS` (probes create one per run)."""

    def __init__(self) -> None:
        self._carts: OrderedDict[str, Cart] = OrderedDict()

    def get(self, cart_id: str | None) -> Cart | None:
        return self._carts.get(cart_id) if cart_id else None

    def get_or_create(self, cart_id: str | None) -> Cart:
        cart = self.get(cart_id)
        if cart is None or cart.ordered:
            cart = Cart(id=f"c-{uuid.uuid4().hex[:12]}")
            self._carts[cart.id] = cart
            while len(self._carts) > MAX_CARTS:
                self._carts.popitem(last=False)
        return cart


class CartLine(BaseModel):
    product_id: str
    quantity: int = Field(default=1, ge=1, le=99)
    cart_id: str | None = None


class Pages:
    """HTML of the shop; every page loads the CDN assets and the collector's rum.js."""

    def __init__(self, settings: DemoShopSettings) -> None:
        self.cdn = settings.url(Service.CDN)
        self.collector = settings.collector_url.rstrip("/")
        self.site_key = settings.site_key

    def render(self, title: str, body: str, script: str = "", status: int = 200) -> HTMLResponse:
        collector = escape(self.collector)
        html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Demo Shop</title>
<link rel="stylesheet" href="{self.cdn}/static/app.css">
<script>
window.jlQueue = [];
function jl(method) {{
  var args = Array.prototype.slice.call(arguments, 1);
  var agent = window.journeylens;
  if (agent && typeof agent[method] === "function") {{ agent[method].apply(agent, args); }}
  else {{ window.jlQueue.push([method, args]); }}
}}
function jlFlush() {{
  var queued = window.jlQueue; window.jlQueue = [];
  queued.forEach(function (call) {{ jl.apply(null, [call[0]].concat(call[1])); }});
}}
</script>
<script src="{collector}/rum.js" data-key="{escape(self.site_key)}"
  data-endpoint="{collector}" async onload="jlFlush()"></script>
<script src="{self.cdn}/static/app.js" defer></script>
</head>
<body>
<header><a href="/"><strong>Demo Shop</strong></a><a href="/search">Search</a>
<a href="/cart">Cart</a><a href="/account">Account</a></header>
<main>
{body}
</main>
{f"<script>{script}</script>" if script else ""}
</body></html>"""
        return HTMLResponse(html, status_code=status)

    def image(self, name: str) -> str:
        return f"{self.cdn}/images/{escape(name)}.svg"

    def product_card(self, product: Product) -> str:
        return (
            f'<a class="card" href="/product/{product.id}">'
            f'<img src="{self.image(product.id)}" alt="" width="200" height="140">'
            f"<h3>{escape(product.name)}</h3><p>{product.price:.2f} {CURRENCY}</p></a>"
        )


def shop_app(registry: FaultRegistry, settings: DemoShopSettings) -> FastAPI:
    app = service_app("shop", registry)
    pages = Pages(settings)
    carts = CartStore()
    secret = settings.secret.get_secret_value()
    shop_url = settings.url(Service.SHOP)
    sso_url = settings.url(Service.SSO)
    pay_url = settings.url(Service.PAYMENT)

    def session_user(request: Request) -> str | None:
        return verify(secret, request.cookies.get(SESSION_COOKIE))

    @app.get("/", response_class=HTMLResponse)
    async def home() -> Response:
        cards = "".join(pages.product_card(p) for p in PRODUCTS.values())
        return pages.render(
            "Home",
            f'<img class="hero" src="{pages.image("spring-collection")}" alt="Spring collection"'
            f' width="960" height="320"><h1>Light up your home</h1>'
            f'<div class="grid" id="products">{cards}</div>',
        )

    @app.get("/login", response_class=HTMLResponse)
    async def login() -> Response:
        query = urlencode(
            {
                "client_id": "demo-shop",
                "redirect_uri": f"{shop_url}/login/callback",
                "state": uuid.uuid4().hex[:8],
            }
        )
        return pages.render(
            "Sign in",
            "<h1>Sign in</h1><p>Use your company account.</p>"
            f'<a class="button" id="sso-login" href="{sso_url}/authorize?{query}">'
            "Sign in with Demo SSO</a>",
        )

    @app.get("/login/callback")
    async def login_callback(code: str = "", state: str = "") -> Response:
        user = verify(secret, code)
        if user is None:
            return pages.render(
                "Sign-in failed", '<h1 class="error">Sign-in failed</h1>', status=401
            )
        response = RedirectResponse("/account?via=sso", status_code=303)
        response.set_cookie(SESSION_COOKIE, sign(secret, user, 3600), httponly=True)
        return response

    @app.get("/account", response_class=HTMLResponse)
    async def account(request: Request, code: str = "", via: str = "") -> Response:
        from_code = verify(secret, code) if code else None
        user = from_code or session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        signed_in_now = from_code is not None or via == "sso"
        response = pages.render(
            "Account",
            f'<h1 id="welcome">Welcome, {escape(user)}</h1>'
            '<p class="muted">Your orders and preferences.</p>',
            script='jl("step", "login:sso");' if signed_in_now else "",
        )
        if from_code is not None:
            response.set_cookie(SESSION_COOKIE, sign(secret, user, 3600), httponly=True)
        return response

    @app.get("/search", response_class=HTMLResponse)
    async def search_page(q: str = "") -> Response:
        found = search(q) if q else []
        results = "".join(pages.product_card(p) for p in found)
        summary = f"<p id='result-count'>{len(found)} results for “{escape(q)}”</p>" if q else ""
        return pages.render(
            "Search",
            '<h1>Search</h1><form action="/search" role="search">'
            f'<input id="q" name="q" value="{escape(q)}" placeholder="lamp">'
            f'<button id="search-submit">Search</button></form>{summary}'
            f'<div class="grid" id="results">{results}</div>',
        )

    @app.get("/api/search")
    async def api_search(q: str = "") -> dict[str, object]:
        return {"query": q, "items": [p.as_json() for p in search(q)]}

    @app.get("/api/products")
    async def api_products() -> dict[str, object]:
        return {"items": [p.as_json() for p in PRODUCTS.values()]}

    @app.get("/product/{product_id}", response_class=HTMLResponse)
    async def product_page(product_id: str) -> Response:
        product = PRODUCTS.get(product_id)
        if product is None:
            return pages.render("Not found", "<h1>Product not found</h1>", status=404)
        return pages.render(
            product.name,
            f'<img class="hero" src="{pages.image(product.id)}" alt="" width="960" height="320">'
            f'<h1 id="product-name">{escape(product.name)}</h1>'
            f"<p>{escape(product.description)}</p>"
            f'<p id="price">{product.price:.2f} {CURRENCY}</p>'
            f'<button id="add-to-cart" data-product="{product.id}">Add to cart</button>'
            '<p class="error" id="cart-error"></p>',
            script=_AFTER_PAINT_JS + _ADD_TO_CART_JS,
        )

    @app.post("/api/cart", status_code=201)
    async def add_to_cart(line: CartLine, request: Request) -> Response:
        if line.product_id not in PRODUCTS:
            return JSONResponse({"error": f"unknown product {line.product_id!r}"}, status_code=404)
        cart = carts.get_or_create(line.cart_id or request.cookies.get(CART_COOKIE))
        cart.items[line.product_id] = cart.items.get(line.product_id, 0) + line.quantity
        response = JSONResponse(cart.as_json(), status_code=201)
        response.set_cookie(CART_COOKIE, cart.id, httponly=True)
        return response

    @app.get("/cart", response_class=HTMLResponse)
    async def cart_page(request: Request, cart: str = "") -> Response:
        found = carts.get(cart or request.cookies.get(CART_COOKIE))
        if found is None or not found.items:
            return pages.render("Cart", "<h1>Your cart</h1><p id='empty'>Your cart is empty.</p>")
        lines = "".join(
            f"<li>{escape(PRODUCTS[p].name)} × {q}</li>" for p, q in found.items.items()
        )
        return pages.render(
            "Cart",
            f"<h1>Your cart</h1><ul id='cart-lines'>{lines}</ul>"
            f"<p id='total'>Total: {found.total:.2f} {CURRENCY}</p>"
            f'<a class="button" id="checkout" href="/checkout?cart={found.id}">'
            "Proceed to checkout</a>",
        )

    @app.get("/checkout", response_class=HTMLResponse)
    async def checkout_page(request: Request, cart: str = "") -> Response:
        found = carts.get(cart or request.cookies.get(CART_COOKIE))
        if found is None or not found.items:
            return pages.render("Checkout", "<h1>Cart not found</h1>", status=404)
        return pages.render(
            "Checkout",
            f"<h1>Checkout</h1><p id='total'>Total: {found.total:.2f} {CURRENCY}</p>"
            '<form id="payment-form"><label>Name on card '
            '<input id="card-name" value="Demo Customer"></label>'
            '<label>Card number <input id="card-number" value="4242 4242 4242 4242"></label>'
            '<button id="pay" type="submit">Pay now</button></form>'
            '<p class="error" id="payment-error"></p>',
            script=_AFTER_PAINT_JS
            + _PAY_JS.replace("__PAY__", pay_url)
            .replace("__CART__", found.id)
            .replace("__AMOUNT__", f"{found.total}")
            .replace("__CURRENCY__", CURRENCY),
        )

    @app.get("/checkout/confirmation", response_class=HTMLResponse)
    async def confirmation(request: Request, cart: str = "") -> Response:
        found = carts.get(cart or request.cookies.get(CART_COOKIE))
        if found is None or not found.items:
            return pages.render("Order", "<h1>Order not found</h1>", status=404)
        found.ordered = True
        return pages.render(
            "Order confirmed",
            f'<h1 id="thanks">Thank you for your order</h1><p>Order {found.id}: '
            f"{found.total:.2f} {CURRENCY}</p>",
            script=f'jl("conversion", {found.total}, "{CURRENCY}");',
        )

    return app


def search(query: str) -> list[Product]:
    words = [w for w in query.lower().split() if w]
    return [
        p
        for p in PRODUCTS.values()
        if words and all(w in f"{p.name} {p.description}".lower() for w in words)
    ]


_AFTER_PAINT_JS = """
// Navigate only once the click's feedback has painted, so the browser has delivered the
// interaction's event-timing entry (INP) before the page unloads.
function afterPaint(then) {
  requestAnimationFrame(function () { setTimeout(then, 0); });
}
"""

_ADD_TO_CART_JS = """
document.getElementById("add-to-cart").addEventListener("click", function (event) {
  var button = event.target;
  var product = button.getAttribute("data-product");
  button.disabled = true;  // immediate feedback, as shops give: the click paints at once
  button.textContent = "Adding…";
  fetch("/api/cart", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({product_id: product, quantity: 1})})
    .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
    .then(function (cart) {
      afterPaint(function () { location.href = "/cart?cart=" + encodeURIComponent(cart.cart_id); });
    })
    .catch(function (e) {
      button.disabled = false;
      button.textContent = "Add to cart";
      document.getElementById("cart-error").textContent = "Could not add: " + e.message;
    });
});
"""

_PAY_JS = """
document.getElementById("payment-form").addEventListener("submit", function (event) {
  event.preventDefault();
  var error = document.getElementById("payment-error");
  var pay = document.getElementById("pay");
  error.textContent = "";
  pay.disabled = true;  // immediate feedback: no double charge, and the click paints at once
  pay.textContent = "Paying…";
  jl("step", "checkout:payment");  // entered the payment step: a failing charge counts there
  fetch("__PAY__/v1/charges", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({cart_id: "__CART__", amount: __AMOUNT__, currency: "__CURRENCY__"})})
    .then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok || body.status !== "authorized") {
          throw new Error("payment failed (HTTP " + r.status + ")");
        }
        return body;
      });
    })
    .then(function (charge) {
      afterPaint(function () {
        location.href = "/checkout/confirmation?cart=__CART__&charge=" + charge.id;
      });
    })
    .catch(function (e) {
      pay.disabled = false;
      pay.textContent = "Pay now";
      error.textContent = e.message;
    });
});
"""
