// The upload form: sent with its progress shown, then the import's own progress (/imports/ID).
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form || !window.XMLHttpRequest) return;
  var box = form.querySelector(".progress"), bar = document.getElementById("upload-progress");
  var text = document.getElementById("upload-text");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    box.hidden = false;
    xhr.upload.onprogress = function (ev) {
      if (ev.lengthComputable) {
        bar.value = Math.round(100 * ev.loaded / ev.total);
        text.textContent = "上传 uploading " + bar.value + " %";
      }
    };
    xhr.onload = function () {
      if (xhr.status === 202) {
        window.location = JSON.parse(xhr.responseText).url;
      } else {
        document.open(); document.write(xhr.responseText); document.close();
      }
    };
    xhr.onerror = function () { text.textContent = "上传失败 the upload failed"; };
    xhr.send(new FormData(form));
  });
})();
