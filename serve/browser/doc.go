// Package browser holds the tests that open hotcb serve's dashboard in a real, headless
// Chromium (driven through the Chrome DevTools Protocol with chromedp): charts draw with data,
// updates arrive without a reload, a click on a control appends the CLI's command line and the
// page shows the ledger's answer, and the page opens fast on a run with 100k points per metric.
// Chromium is Debian's chromium package (the Makefile's deps installs it); without it the tests
// skip, saying so. HOTCB_SCREENSHOT=FILE makes TestReadmeScreenshot write the README's picture.
package browser
