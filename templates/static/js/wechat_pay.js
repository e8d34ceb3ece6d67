// Pays a held number with WeChat Pay JSAPI inside WeChat's own browser: hands the signed parameters to
// WeixinJSBridge.invoke('getBrandWCPayRequest', …), then goes to the "checking your payment" page, which
// refreshes until the payment notification has booked the number (the bridge's "ok" is not proof of payment).
// In sandbox mode (data-sandbox-pay-url) a small shim plays the bridge: it opens the sandbox's payment page,
// which checks the paySign and lets the patient pay at the sandbox cashier. The real bridge exists only in WeChat.
(function () {
  "use strict";
  var holder = document.getElementById("wechat-pay");
  var paramsNode = document.getElementById("wechat-pay-params");
  if (!holder || !paramsNode) {
    return;
  }
  var params = JSON.parse(paramsNode.textContent);
  var statusNode = document.getElementById("wechat-pay-status");
  var failedNode = document.getElementById("wechat-pay-failed");
  var button = document.getElementById("wechat-pay-button");
  var sandboxUrl = holder.dataset.sandboxPayUrl;

  if (sandboxUrl && typeof window.WeixinJSBridge === "undefined") {
    window.WeixinJSBridge = {
      invoke: function (name, request) {
        if (name !== "getBrandWCPayRequest") {
          return;
        }
        var query = new URLSearchParams(request);
        query.set("redirect_url", holder.dataset.sandboxReturnUrl);
        window.location.assign(sandboxUrl + "?" + query.toString());
      },
    };
    window.setTimeout(function () {
      document.dispatchEvent(new Event("WeixinJSBridgeReady"));
    }, 0);
  }

  function pay() {
    button.disabled = true;
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (answer) {
      var message = (answer && answer.err_msg) || "";
      if (message === "get_brand_wcpay_request:ok") {
        statusNode.textContent = holder.dataset.checkingText;
        window.location.assign(holder.dataset.checkingUrl);
        return;
      }
      // Cancelled or failed: the order stays open until the hold expires, so the patient may try again.
      failedNode.hidden = false;
      button.disabled = false;
    });
  }

  button.addEventListener("click", function () {
    if (typeof window.WeixinJSBridge === "undefined") {
      document.addEventListener("WeixinJSBridgeReady", pay, { once: true });
    } else {
      pay();
    }
  });
  if (typeof window.WeixinJSBridge === "undefined") {
    document.addEventListener("WeixinJSBridgeReady", pay, { once: true });
  } else {
    pay();
  }
})();
