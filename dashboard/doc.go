// Package dashboard is `bench serve`'s local web app: the HTTP API over
// results folders and the embedded page (assets/: index.html, app.js, the
// analysis views in views.js, style.css).
package dashboard
