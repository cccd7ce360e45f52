// tagwise serve: the API page (Swagger UI from the swagger-ui-bundle package, served by this server).
// "Try it out" runs as the signed-in page does: same-origin, with the session's CSRF token.
"use strict";
(function () {
  const port = location.port || (location.protocol === "https:" ? "443" : "80");
  function csrf() {
    const found = document.cookie.split("; ").find((c) => c.startsWith(`tagwise_csrf_${port}=`));
    return found ? decodeURIComponent(found.slice(found.indexOf("=") + 1)) : null;
  }
  window.ui = SwaggerUIBundle({
    url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset], layout: "BaseLayout",
    requestInterceptor: (req) => {
      const token = csrf();
      if (token) req.headers["X-CSRF-Token"] = token;
      if (!req.headers["Content-Type"] && req.method && req.method !== "GET") req.headers["Content-Type"] = "application/json";
      return req;
    },
  });
})();
