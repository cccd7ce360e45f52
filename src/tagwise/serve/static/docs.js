// tagwise serve: the API page (Swagger UI from the swagger-ui-bundle package, served by this server).
// "Try it out" runs as the signed-in page does: same-origin, with the session's CSRF token.
"use strict";
(function () {
  const port = location.port || "default";
  function csrf() {
    const all = document.cookie.split("; ").filter((c) => c.startsWith("tagwise_csrf_"));
    const found = all.find((c) => c.startsWith(`tagwise_csrf_${port}=`)) || (all.length === 1 ? all[0] : null);
    return found ? decodeURIComponent(found.slice(found.indexOf("=") + 1)) : null;
  }
  function show(spec) {
    window.ui = SwaggerUIBundle({
      spec, dom_id: "#swagger-ui", deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset], layout: "BaseLayout",
      requestInterceptor: (req) => {
        const token = csrf();
        if (token) req.headers["X-CSRF-Token"] = token;
        if (!req.headers["Content-Type"] && req.method && req.method !== "GET") req.headers["Content-Type"] = "application/json";
        return req;
      },
    });
  }
  // The packaged Swagger UI (4.x) reads OpenAPI 3.0; FastAPI writes 3.1, whose schemas it shows well enough
  // once the version field says 3.0 (only this page's copy is relabeled; /openapi.json stays 3.1).
  fetch("/openapi.json", {credentials: "same-origin"}).then((r) => r.json()).then((spec) => {
    if (typeof spec.openapi === "string" && spec.openapi.startsWith("3.1")) spec.openapi = "3.0.3";
    show(spec);
  });
})();
