window.peftViews = window.peftViews || {};
